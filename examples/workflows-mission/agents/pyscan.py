"""Static analysis with `ast` for the scanner, analyst, stylist, developer and verifier agents.

Three read-only passes over Python sources: security smells (`security_findings`), function
metrics (`function_metrics`) and style issues (`style_issues`). Each returns plain dicts with
the file and line, so agents can pass them along as step outputs.
"""

import ast
import re
from pathlib import Path

SEVERITY = {"critical": 4, "high": 3, "medium": 2, "low": 1}
SNAKE = re.compile(r"^_{0,2}[a-z][a-z0-9_]*$")
CAP_WORDS = re.compile(r"^_?[A-Z][A-Za-z0-9]*$")
BRANCHES = (ast.If, ast.For, ast.While, ast.Try, ast.With, ast.IfExp, ast.comprehension)


def parse(root, rel):
    return ast.parse(Path(root, rel).read_text(encoding="utf-8"), filename=rel)


def dotted(node):
    """'subprocess.run' for the call target `subprocess.run`; '' for anything fancier."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = dotted(node.value)
        return f"{base}.{node.attr}" if base else ""
    return ""


# --- security -----------------------------------------------------------------------------


def smell(call):
    """(rule, severity, message) if this call is a known smell, else None."""
    name = dotted(call.func)
    keywords = {k.arg: k.value for k in call.keywords}
    shell = keywords.get("shell")
    if name in ("eval", "exec"):
        return "eval-call", "critical", f"{name}() runs whatever code its argument holds"
    if isinstance(shell, ast.Constant) and shell.value is True:
        return "shell-true", "high", f"{name}(shell=True) lets a crafted argument run commands"
    if name == "yaml.load" and "Loader" not in keywords:
        return "yaml-load", "high", "yaml.load without a Loader can build arbitrary objects"
    if name in ("pickle.load", "pickle.loads"):
        return "pickle-load", "medium", f"{name} of untrusted bytes can run code"
    if name in ("hashlib.md5", "hashlib.sha1"):
        return "weak-hash", "low", f"{name} is a broken hash; use hashlib.sha256"
    return None


def security_rule(call):
    found = smell(call)
    return found[0] if found else None


def security_findings(root, files):
    """Every smell in the given files (relative to root), in file and line order."""
    findings = []
    for rel in files:
        source = Path(root, rel).read_text(encoding="utf-8").splitlines()
        for node in ast.walk(parse(root, rel)):
            if isinstance(node, ast.Call) and (found := smell(node)):
                rule, severity, message = found
                findings.append(
                    {
                        "rule": rule,
                        "severity": severity,
                        "file": rel,
                        "line": node.lineno,
                        "code": source[node.lineno - 1].strip(),
                        "message": message,
                    }
                )
    return sorted(findings, key=lambda f: (f["file"], f["line"]))


# --- metrics ------------------------------------------------------------------------------


def complexity(function):
    """McCabe-style: 1 + branches + extra boolean operands."""
    score = 1
    for node in ast.walk(function):
        if isinstance(node, BRANCHES):
            score += 1
        elif isinstance(node, ast.BoolOp):
            score += len(node.values) - 1
    return score


def function_metrics(root, files):
    found = []
    for rel in files:
        for node in ast.walk(parse(root, rel)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                found.append(
                    {
                        "name": node.name,
                        "file": rel,
                        "line": node.lineno,
                        "lines": node.end_lineno - node.lineno + 1,
                        "args": len(node.args.args),
                        "complexity": complexity(node),
                        "documented": ast.get_docstring(node) is not None,
                    }
                )
    return found


# --- style --------------------------------------------------------------------------------


def style_issues(root, files, max_line_length):
    issues = []
    for rel in files:
        text = Path(root, rel).read_text(encoding="utf-8")
        for number, line in enumerate(text.splitlines(), start=1):
            if len(line) > max_line_length:
                issues.append((rel, number, f"line is {len(line)} characters long"))
            if line != line.rstrip():
                issues.append((rel, number, "trailing whitespace"))
        if text and not text.endswith("\n"):
            issues.append((rel, len(text.splitlines()), "no newline at end of file"))
        for node in ast.walk(parse(root, rel)):
            if isinstance(node, ast.FunctionDef) and not SNAKE.match(node.name):
                issues.append((rel, node.lineno, f"function {node.name} is not snake_case"))
            if isinstance(node, ast.ClassDef) and not CAP_WORDS.match(node.name):
                issues.append((rel, node.lineno, f"class {node.name} is not CapWords"))
    return [{"file": f, "line": n, "issue": i} for f, n, i in sorted(issues)]
