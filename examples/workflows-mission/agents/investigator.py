"""Investigator agent (bug-fix `investigate`): reproduces the reported call and locates the fault.

It runs the call from the triage against the original app in a child process (`python -B`,
so nothing is written next to the sources), then reads the traceback: the deepest frame in
the app's own module is where the fix goes. If the call does not fail the way the issue says,
the bug is not reproduced and the step fails rather than guess.
"""

import re
import subprocess
import sys

import devkit

FRAME = re.compile(r'File "(?P<file>[^"]+)", line (?P<line>\d+), in (?P<function>\w+)')


def reproduce(app, module, call):
    """(stdout, stderr) of calling `call` with the app's module imported."""
    name = devkit.module_name(module)
    code = f"from {name} import *\nprint(repr({call}))"
    proc = subprocess.run(
        [sys.executable, "-B", "-c", code],
        cwd=app,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return proc.stdout.strip(), proc.stderr.strip()


def fault_frame(stderr, module):
    """(line, function) of the deepest traceback frame inside `module`, or None."""
    frames = [m for m in FRAME.finditer(stderr) if m["file"].endswith(module)]
    return (int(frames[-1]["line"]), frames[-1]["function"]) if frames else None


def main():
    task = devkit.load_task()
    triage = devkit.upstream_with(task, "call")
    app, module, call = devkit.app_dir(task), triage["module"], triage["call"]
    stdout, stderr = reproduce(app, module, call)
    last = (stderr.splitlines() or [""])[-1]
    exception = triage["exception"]
    if exception and not last.startswith(exception):
        devkit.finish("failed", error=f"not reproduced: {call} gave {stdout or last!r}")
        return
    if not exception and stdout == repr(triage["expected"]):
        devkit.finish("failed", error=f"not reproduced: {call} already returns {stdout}")
        return
    frame = fault_frame(stderr, module)
    line = frame[0] if frame else None
    source = (app / module).read_text(encoding="utf-8").splitlines()
    devkit.drop("reproduction.txt", f"$ python -c '{call}'\n{stderr or stdout}\n")
    devkit.finish(
        output=f"Reproduced: {call} -> {last or stdout}"
        + (f" at {module}:{line}: {source[line - 1].strip()}" if line else ""),
        outputs={
            "work": "bug",
            "function": triage["function"],
            "call": call,
            "module": module,
            "line": line,
            "exception": exception,
            "observed": last or stdout,
            "expected": triage["expected"],
        },
    )


if __name__ == "__main__":
    main()
