"""Developer agent (feature-dev `implement`, bug-fix and security-audit `fix`): edits the code.

It edits this run's working copy (see devkit.working_copy) and does what the upstream work
order says (`outputs.work` of the plan, investigate or prioritize step):

- feature: adds the planned function from recipes.py and a test per acceptance criterion.
  The first attempt is the recipe's hurried draft; once a verifier has sent it back (task.json
  `feedback` is set) it writes the proper body.
- bug: puts a guard before the division that raised ZeroDivisionError, returning the expected
  value, and adds a regression test calling the function the way the issue did.
- security: rewrites the highest-ranked finding it knows a safe equivalent for
  (eval -> ast.literal_eval, yaml.load -> yaml.safe_load).

Every attempt starts from the original file, so a rework or a retry never stacks edits.
"""

import ast
import shutil

import devkit
import pyscan
from recipes import RECIPES


class CannotDo(Exception):
    """The work order asks for something this agent has no safe way to do."""


# rule -> (replacement call, module the replacement needs imported)
REWRITES = {"eval-call": ("ast.literal_eval", "ast"), "yaml-load": ("yaml.safe_load", None)}


def restore(task, rel):
    """Put the original file back into the working copy; return the copy's path."""
    target = devkit.working_copy(task) / rel
    shutil.copyfile(devkit.app_dir(task) / rel, target)
    return target


def class_name(function):
    return "".join(part.title() for part in function.split("_"))


def write_test(task, rel, function, module, cases, doc):
    """A unittest module with one assertEqual per (argument source, expected) case."""
    lines = [
        "import unittest",
        "",
        f"from {devkit.module_name(module)} import {function}",
        "",
        "",
        f"class {class_name(function)}Test(unittest.TestCase):",
        f'    """{doc}"""',
    ]
    for n, (arg, expected) in enumerate(cases, start=1):
        call = f"{function}({arg})"
        lines += [
            "",
            f"    def test_example_{n}(self):",
            f"        self.assertEqual({call}, {expected!r}, {call!r})",
        ]
    (devkit.working_copy(task) / rel).write_text("\n".join(lines) + "\n", encoding="utf-8")


# --- feature ------------------------------------------------------------------------------


def implement_feature(task, plan):
    name, module = plan["function"], plan["module"]
    recipe = RECIPES[name]
    reworked = bool(task.get("feedback"))
    body = recipe.body if reworked else recipe.draft
    path = restore(task, module)
    code = f'\n\ndef {name}(text):\n    """{recipe.summary}"""\n    {body}\n'
    path.write_text(path.read_text(encoding="utf-8") + code, encoding="utf-8")
    test = f"tests/test_{name}.py"
    write_test(task, test, name, module, plan["examples"], f"Acceptance criteria of {name}.")
    how = "reworked after review" if reworked else "first draft"
    return f"Added {name} to {module} ({how}: `{body}`) and {test}.", {
        "work": "feature",
        "function": name,
        "files": [module, test],
        "tests": [test],
        "reworked": reworked,
    }


# --- bug ----------------------------------------------------------------------------------


def innermost_statement(function, line):
    statements = [
        n
        for n in ast.walk(function)
        if isinstance(n, ast.stmt) and n is not function and n.lineno <= line <= n.end_lineno
    ]
    return max(statements, key=lambda n: n.lineno, default=None)


def divisor_name(statement):
    """NAME for a division by `len(NAME)` or by `NAME` inside the statement, else None."""
    for node in ast.walk(statement):
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div | ast.FloorDiv | ast.Mod):
            right = node.right
            if isinstance(right, ast.Call) and pyscan.dotted(right.func) == "len" and right.args:
                right = right.args[0]
            if isinstance(right, ast.Name):
                return right.id
    return None


def fix_bug(task, bug):
    if bug["exception"] != "ZeroDivisionError" or not bug["line"]:
        raise CannotDo(f"no fix strategy for {bug['observed']!r}")
    path = restore(task, bug["module"])
    tree = ast.parse(path.read_text(encoding="utf-8"))
    defs = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == bug["function"]]
    if not defs:
        raise CannotDo(f"no top-level function {bug['function']} in {bug['module']}")
    statement = innermost_statement(defs[0], bug["line"])
    name = divisor_name(statement) if statement else None
    if name is None:
        raise CannotDo(f"no division by a length at {bug['module']}:{bug['line']}")
    pad = " " * statement.col_offset
    guard = [f"{pad}if not {name}:\n", f"{pad}    return {bug['expected']!r}\n"]
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    lines[statement.lineno - 1 : statement.lineno - 1] = guard
    path.write_text("".join(lines), encoding="utf-8")
    test = f"tests/test_regression_{bug['function']}.py"
    arg = bug["call"][len(bug["function"]) + 1 : -1]
    doc = f"{bug['call']} raised {bug['exception']}; it returns {bug['expected']!r} now."
    write_test(task, test, bug["function"], bug["module"], [(arg, bug["expected"])], doc)
    output = f"Guarded {bug['function']} against empty `{name}` and added {test}."
    return output, {
        "work": "bug",
        "function": bug["function"],
        "files": [bug["module"], test],
        "tests": [test],
        "guard": f"if not {name}: return {bug['expected']!r}",
    }


# --- security -----------------------------------------------------------------------------


def rewrite_call(source, finding, replacement):
    """The source with the flagged call's name replaced (same line, same arguments)."""
    for node in ast.walk(ast.parse(source)):
        if (
            isinstance(node, ast.Call)
            and node.lineno == finding["line"]
            and pyscan.security_rule(node) == finding["rule"]
        ):
            lines = source.splitlines(keepends=True)
            line = lines[node.lineno - 1]
            func = node.func
            lines[node.lineno - 1] = (
                line[: func.col_offset] + replacement + line[func.end_col_offset :]
            )
            return "".join(lines)
    return None


def add_import(source, module):
    """`import module` before the first top-level import (after the docstring), if missing."""
    tree = ast.parse(source)
    imports = [n for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom)]
    if any(alias.name == module for n in imports if isinstance(n, ast.Import) for alias in n.names):
        return source
    lines = source.splitlines(keepends=True)
    at = imports[0].lineno - 1 if imports else (tree.body[0].end_lineno if tree.body else 0)
    lines[at:at] = [f"import {module}\n"]
    return "".join(lines)


def fix_finding(task, order):
    fixable = [f for f in order["ranked"] if f["rule"] in REWRITES]
    if not fixable:
        raise CannotDo("none of the ranked findings has a known safe rewrite")
    finding = fixable[0]
    replacement, needs = REWRITES[finding["rule"]]
    path = restore(task, finding["file"])
    source = rewrite_call(path.read_text(encoding="utf-8"), finding, replacement)
    if source is None:
        raise CannotDo(f"no flagged call at {finding['file']}:{finding['line']}")
    path.write_text(add_import(source, needs) if needs else source, encoding="utf-8")
    remaining = [
        f"{f['rule']} at {f['file']}:{f['line']}" for f in order["ranked"] if f is not finding
    ]
    output = f"Fixed {finding['rule']} at {finding['file']}:{finding['line']} with {replacement}."
    return output, {
        "work": "security",
        "fixed": finding,
        "files": [finding["file"]],
        "tests": [],
        "remaining": remaining,
    }


HANDLERS = {"feature": implement_feature, "bug": fix_bug, "security": fix_finding}


def main():
    task = devkit.load_task()
    order = devkit.upstream_with(task, "work")
    if not devkit.working_copy(task).is_dir():
        devkit.finish("failed", error="no working copy: the setup step must run first")
        return
    handler = HANDLERS.get(order.get("work"))
    if handler is None:
        devkit.finish("failed", error=f"no work order upstream (work: {order.get('work')!r})")
        return
    try:
        output, outputs = handler(task, order)
    except CannotDo as exc:
        devkit.finish("failed", error=str(exc))
        return
    devkit.finish(output=output, outputs=outputs)


if __name__ == "__main__":
    main()
