"""Agent programs for tests: the prelude a Python agent starts with, and one-line agents."""

from __future__ import annotations

import sys
import textwrap

PY = sys.executable

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
