"""Helpers for the workflow tests: a real mission repo, real agents, real DuckDB state.

`WfRepo` writes YAML and agent programs (small Python scripts run with this interpreter)
into a git repository under tmp_path, commits them with the git CLI, and drives the work
either in-process through `apply_now` (what `mc apply --auto-approve` calls) or through the
installed `mc` script. Agents find the test's scratch folders next to the repo through
MC_REPO: `flags/` (files a test creates to change an agent's mind) and `marks/` (files an
agent writes to say when it ran).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from reconciler.commands.context import MissionContext
from reconciler.commands.plan_apply import Applied, Drive, apply_now
from reconciler.tasks.workflow_runs import step_task_name
from state.records import Event, RunRow, TaskRow, WorkflowRunRow
from state.store import State

PY = sys.executable
_SCRIPT = Path(sys.executable).with_name("mc")
MC = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "cli"]
CLI_TIMEOUT_S = 60

GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "Workflow Tests",
    "GIT_AUTHOR_EMAIL": "workflow-tests@example.invalid",
    "GIT_COMMITTER_NAME": "Workflow Tests",
    "GIT_COMMITTER_EMAIL": "workflow-tests@example.invalid",
    "GIT_CONFIG_NOSYSTEM": "1",
}

# Every agent program starts with this: the files protocol and the test's scratch folders.
PRELUDE = """\
import json, os, sys, time
from pathlib import Path

TASK = json.loads(Path(os.environ["MC_TASK_JSON"]).read_text())
SCRATCH = Path(os.environ["MC_REPO"]).parent
FLAGS, MARKS = SCRATCH / "flags", SCRATCH / "marks"
MARKS.mkdir(exist_ok=True)
NAME = TASK["task"]


def result(**fields):
    Path(os.environ["MC_RESULT_JSON"]).write_text(json.dumps(fields))


RUN_SEQ = Path(os.environ["MC_TASK_JSON"]).parent.name  # 1, 2, … per run of this task


def mark(label):
    tmp = MARKS / f".{NAME}.{RUN_SEQ}.{label}.tmp"
    tmp.write_text(json.dumps({"t": time.time(), "pid": os.getpid()}))
    tmp.replace(MARKS / f"{NAME}.{RUN_SEQ}.{label}")

"""

# Does its step: the output is the prompt it was given, plus a fixed key in `outputs`.
WORKER = """
mark("start")
if "SLOW" in TASK["prompt"]:
    time.sleep(1.0)
mark("end")
result(status="done", output=TASK["prompt"], outputs={"summary": "sum of " + NAME})
"""

# Rejects the step it verifies `REJECT` times (read from its prompt), then accepts.
VERIFIER = """
wanted = int(TASK["prompt"].split("REJECT=")[1].split()[0]) if "REJECT=" in TASK["prompt"] else 0
round_ = TASK["workflow"]["rework"]
if round_ < wanted:
    result(status="retry", error=f"add tests please (round {round_ + 1})")
else:
    result(status="done", output="looks good")
"""

# Fails permanently unless flags/<task name> exists.
FLAKY = """
if (FLAGS / NAME).exists():
    result(status="done", output="fixed")
else:
    result(status="failed", error="the build is broken")
"""

# Waits (up to its timeout) until flags/<task name> exists.
WAITER = """
mark("start")
while not (FLAGS / NAME).exists():
    time.sleep(0.05)
result(status="done", output=TASK["prompt"])
"""

AGENTS = {"worker": WORKER, "verifier": VERIFIER, "flaky": FLAKY, "waiter": WAITER}
ONE_TRY = {"max_attempts": 1}


def git(cwd: Path, *args: str) -> str:
    env = {**os.environ, **GIT_IDENTITY}
    proc = subprocess.run(
        ["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=False, timeout=30
    )
    assert proc.returncode == 0, f"git {' '.join(args)}: {proc.stderr}"
    return proc.stdout.strip()


def doc(kind: str, name: str, spec: dict[str, Any]) -> str:
    return yaml.safe_dump(
        {"apiVersion": "mc/v1", "kind": kind, "metadata": {"name": name}, "spec": spec},
        sort_keys=False,
    )


def step(sid: str, agent: str = "worker", **fields: Any) -> dict[str, Any]:
    """A workflow step; a failing step is not retried unless the test says so."""
    fields.setdefault("retry", ONE_TRY)
    return {"id": sid, "agent": agent, **fields}


class WfRepo:
    """A mission repo with the four standard agents, and the ways a test drives and reads it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True)
        (root.parent / "flags").mkdir(exist_ok=True)
        git(root, "init", "-q")
        self.write("mission.yaml", doc("Mission", "workflow-tests", {}))
        for name, code in AGENTS.items():
            self.write(f"agents/{name}.py", PRELUDE + textwrap.dedent(code))
            spec = {
                "capabilities": [name],
                "command": [PY, f"{{repo}}/agents/{name}.py"],
                "concurrency": 4,
                "timeout": "20s",
            }
            self.write(f"agents/{name}.yaml", doc("Agent", name, spec))

    # --- writing the desired state ---------------------------------------------------------

    def write(self, rel: str, text: str) -> Path:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return path

    def replace_in(self, rel: str, old: str, new: str) -> None:
        text = (self.root / rel).read_text()
        assert old in text, f"{old!r} not in {rel}"
        self.write(rel, text.replace(old, new))

    def remove(self, rel: str) -> None:
        (self.root / rel).unlink()

    def workflow(
        self, name: str, steps: list[dict[str, Any]], inputs: dict[str, Any] | None = None
    ) -> str:
        rel = f"workflows/{name}.yaml"
        self.write(rel, doc("Workflow", name, {"inputs": inputs or {}, "steps": steps}))
        return rel

    def run(self, name: str, workflow: str, nonce: int = 0, **inputs: Any) -> str:
        spec: dict[str, Any] = {"workflow": workflow, "inputs": inputs}
        if nonce:
            spec["retry_nonce"] = nonce
        rel = f"runs/{name}.yaml"
        self.write(rel, doc("WorkflowRun", name, spec))
        return rel

    def commit(self, message: str = "edit") -> str:
        git(self.root, "add", "-A")
        git(self.root, "commit", "-q", "--allow-empty", "-m", message)
        return git(self.root, "rev-parse", "HEAD")

    def flag(self, name: str) -> None:
        (self.root.parent / "flags" / name).write_text("go")

    # --- driving ---------------------------------------------------------------------------

    def apply(self, drive: Drive | None = None) -> Applied:
        """`mc apply --auto-approve`, in-process: plan HEAD, apply, drive until settled."""
        return apply_now(MissionContext.at(self.root), "test", lambda plan: True, drive or Drive())

    def mc(self, *args: str) -> subprocess.CompletedProcess[str]:
        """The real CLI, as in CI: stdin not a terminal; wide enough that tables do not wrap."""
        return subprocess.run(
            [*MC, "-C", str(self.root), *args],
            env={**os.environ, "COLUMNS": "250"},
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            check=False,
            timeout=CLI_TIMEOUT_S,
        )

    def mc_json(self, *args: str) -> Any:
        proc = self.mc(*args, "--json")
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout)

    # --- reading the observed state --------------------------------------------------------

    @property
    def state_file(self) -> Path:
        return self.root / ".mc" / "state.duckdb"

    @contextmanager
    def state(self) -> Iterator[State]:
        with State.open(self.state_file, write=False) as state:
            yield state

    def step_row(self, run: str, sid: str) -> TaskRow:
        name = step_task_name(run, sid)
        with self.state() as state:
            rows = state.reader.tasks([name])
        assert rows, f"no task {name} in the state"
        return rows[0]

    def steps(self, run: str) -> dict[str, str]:
        """step id -> state, for every step task of the run."""
        with self.state() as state:
            rows = state.reader.tasks()
        return {t.step: t.state for t in rows if t.workflow_run == run and t.step is not None}

    def run_row(self, run: str) -> WorkflowRunRow:
        with self.state() as state:
            [row] = state.reader.workflow_runs([run])
        return row

    def runs_of(self, run: str, sid: str) -> list[RunRow]:
        """The agent runs of one step, oldest first."""
        with self.state() as state:
            return list(reversed(state.reader.runs(task=step_task_name(run, sid))))

    def all_runs(self) -> list[RunRow]:
        with self.state() as state:
            return state.reader.runs(limit=10_000)

    def events(self, kind: str) -> list[Event]:
        with self.state() as state:
            return [e for e in state.reader.events(limit=10_000) if e.kind == kind]

    def task_json(self, run: str, sid: str, attempt: int = -1) -> dict[str, Any]:
        """The task.json the step's agent was given on one of its runs (default: the last)."""
        recorded = self.runs_of(run, sid)[attempt].workspace
        assert recorded is not None
        workspace = Path(recorded)
        data: dict[str, Any] = json.loads((workspace / "task.json").read_text())
        return data

    def mark(self, task: str, label: str, seq: int = 1) -> dict[str, Any] | None:
        """What the agent of `task` wrote with mark(label) on its run number `seq`."""
        path = self.root.parent / "marks" / f"{task}.{seq}.{label}"
        return json.loads(path.read_text()) if path.exists() else None


def wait_for(check: Callable[[], bool], within: float, what: str) -> None:
    """Poll `check` until true; fail with `what` after `within` seconds (a hang guard only)."""
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def flat(text: str) -> str:
    """Whitespace-normalised text, so assertions do not depend on terminal width."""
    return " ".join(text.split())
