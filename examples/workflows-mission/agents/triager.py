"""Triager agent (bug-fix `triage`): reads the issue text and says which function misbehaves.

Offline stand-in for a model reading a bug report. It understands reports shaped like
`average_word_length("") raises ZeroDivisionError ...; expected 0.0`: the call, what it does
instead (`raises X` or `returns Y`), and the expected value. The function must exist in the
app (found with ast); a crash is rated high, a wrong value medium.
"""

import ast
import re

import devkit
import pyscan

CALL = re.compile(r"(?P<call>(?P<function>[A-Za-z_]\w*)\((?P<args>[^()]*)\))")
RAISES = re.compile(r"\braises (?P<exception>[A-Za-z_]\w*)")
EXPECTED = re.compile(r"\bexpected (?P<expected>.+?)\s*$")


def defining_module(root, function):
    """The app file (tests excluded) that defines `function`, or None."""
    for rel in devkit.source_files(root, include_tests=False):
        tree = pyscan.parse(root, rel)
        if any(isinstance(n, ast.FunctionDef) and n.name == function for n in tree.body):
            return rel
    return None


def main():
    task = devkit.load_task()
    issue = devkit.inputs(task)["issue"]
    call, expected = CALL.search(issue), EXPECTED.search(issue)
    if call is None or expected is None:
        devkit.finish(
            "failed", error=f"cannot read the issue {issue!r}: name a call and `expected`"
        )
        return
    module = defining_module(devkit.app_dir(task), call["function"])
    if module is None:
        devkit.finish("failed", error=f"no function {call['function']} in the app")
        return
    raises = RAISES.search(issue)
    symptom = f"raises {raises['exception']}" if raises else "returns a wrong value"
    severity = "high" if raises else "medium"
    devkit.finish(
        output=f"{severity}: {call['call']} {symptom} (defined in {module}).",
        outputs={
            "function": call["function"],
            "call": call["call"],
            "module": module,
            "exception": raises["exception"] if raises else None,
            "expected": ast.literal_eval(expected["expected"]),
            "severity": severity,
            "labels": ["bug", severity, module.split("/")[0]],
        },
    )


if __name__ == "__main__":
    main()
