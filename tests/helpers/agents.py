"""Agent programs for tests: the prelude a Python agent starts with, and one-line agents."""

from __future__ import annotations

import os
import sys
import textwrap
from pathlib import Path
from typing import Any

PY = sys.executable


def interpreter_mounts() -> list[dict[str, str]]:
    """Read-only `mounts` that let a sandboxed agent run PY: the venv, the installation it
    comes from and the real binary's directory (all invisible inside the sandbox otherwise)."""
    found = {sys.prefix, sys.base_prefix, os.path.dirname(os.path.realpath(sys.executable))}
    paths = [Path(p) for p in found]
    outer = sorted(p for p in paths if not any(p != q and p.is_relative_to(q) for q in paths))
    return [ro(p) for p in outer]


def ro(path: Path | str) -> dict[str, str]:
    """A read-only mount of `path` for an agent spec."""
    return {"path": str(path), "mode": "ro"}


def rw(path: Path | str) -> dict[str, str]:
    """A writable mount of `path` for an agent spec (a test agent's scratch directory)."""
    return {"path": str(path), "mode": "rw"}


def with_interpreter(spec: dict[str, Any]) -> dict[str, Any]:
    """`spec` with the interpreter mounts added before the mounts it declares itself."""
    return {**spec, "mounts": [*interpreter_mounts(), *spec.get("mounts", [])]}


# Every agent program starts with this: the files protocol in four names.
PRELUDE = """\
import json, os, signal, sys, time
from pathlib import Path

TASK = json.loads(Path(os.environ["MC_TASK_JSON"]).read_text())
OUT = Path(os.environ["MC_OUT_DIR"])
ATTEMPT = int(os.environ["MC_ATTEMPT"])


def result(**fields):
    Path(os.environ["MC_RESULT_JSON"]).write_text(json.dumps(fields))

"""


def program(code: str, prelude: str = PRELUDE) -> str:
    """An agent program: the prelude, then `code` (dedented)."""
    return prelude + textwrap.dedent(code)


def done_agent_code(**extra: object) -> str:
    """A whole agent in one `python -c`: report done with an output naming the task, plus
    the `extra` result fields (e.g. cost_usd)."""
    fields = "".join(f", {key!r}: {value!r}" for key, value in extra.items())
    return (
        "import json, os, pathlib;"
        "t = json.loads(pathlib.Path(os.environ['MC_TASK_JSON']).read_text());"
        "pathlib.Path(os.environ['MC_RESULT_JSON']).write_text("
        f"json.dumps({{'status': 'done', 'output': 'did ' + t['task']{fields}}}))"
    )
