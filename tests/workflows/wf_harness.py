"""Helpers for the workflow tests: a real mission repo, real agents, real DuckDB state.

`WfRepo` writes YAML and agent programs (small Python scripts run with this interpreter)
into a git repository under tmp_path, commits them with the git CLI, and drives the work
either in-process through `apply_now` (what `mc apply --auto-approve` calls) or through the
installed `mc` script. Agents find the test's scratch folders in the repo's `scratch` (the
one host folder beside their workspace a sandboxed test agent may write) through $SCRATCH:
`flags/` (files a test creates to change an agent's mind) and `marks/` (files an agent writes
to say when it ran). Git, YAML, the `mc` runner, waiting and the repo builder
come from `helpers` (re-exported here for the tests that import them from this module).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from helpers.agents import PRELUDE as BASE_PRELUDE
from helpers.git import GIT_IDENTITY as GIT_IDENTITY
from helpers.git import git as git
from helpers.mc import MC as MC
from helpers.mc import flat as flat
from helpers.mission_repo import GitRepo
from helpers.waiting import wait_for as wait_for
from helpers.yaml_docs import doc as doc

from reconciler.commands.plan_apply import Applied, Drive
from reconciler.tasks.workflow_runs import step_task_name
from state.records import RunRow, TaskRow, WorkflowRunRow

# Every agent program starts with this: the files protocol and the test's scratch folders.
PRELUDE = (
    BASE_PRELUDE
    + """
SCRATCH = Path(os.environ["SCRATCH"])
FLAGS, MARKS = SCRATCH / "flags", SCRATCH / "marks"
MARKS.mkdir(exist_ok=True)
NAME = TASK["task"]
RUN_SEQ = Path(os.environ["MC_TASK_JSON"]).parent.name  # 1, 2, … per run of this task


def mark(label):
    tmp = MARKS / f".{NAME}.{RUN_SEQ}.{label}.tmp"
    tmp.write_text(json.dumps({"t": time.time(), "run": os.environ["MC_RUN_ID"]}))
    tmp.replace(MARKS / f"{NAME}.{RUN_SEQ}.{label}")

"""
)

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


def step(sid: str, agent: str = "worker", **fields: Any) -> dict[str, Any]:
    """A workflow step; a failing step is not retried unless the test says so."""
    fields.setdefault("retry", ONE_TRY)
    return {"id": sid, "agent": agent, **fields}


class WfRepo(GitRepo):
    """A mission repo with the four standard agents, and the ways a test drives and reads it."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.init()
        self.write_doc("mission.yaml", "Mission", "workflow-tests", {})
        for name, code in AGENTS.items():
            self.agent(
                name,
                capabilities=[name],
                command=self.agent_program(name, code, PRELUDE),
                concurrency=4,
                env={"SCRATCH": str(self.scratch)},
            )
        (self.scratch / "flags").mkdir(exist_ok=True)

    # --- writing the desired state ---------------------------------------------------------

    def replace_in(self, rel: str, old: str, new: str) -> None:
        self.replace(rel, old, new)

    def workflow(
        self, name: str, steps: list[dict[str, Any]], inputs: dict[str, Any] | None = None
    ) -> str:
        spec = {"inputs": inputs or {}, "steps": steps}
        return self.write_doc(f"workflows/{name}.yaml", "Workflow", name, spec)

    def run(self, name: str, workflow: str, nonce: int = 0, **inputs: Any) -> str:
        spec: dict[str, Any] = {"workflow": workflow, "inputs": inputs}
        if nonce:
            spec["retry_nonce"] = nonce
        return self.write_doc(f"runs/{name}.yaml", "WorkflowRun", name, spec)

    def flag(self, name: str) -> None:
        (self.scratch / "flags" / name).write_text("go")

    # --- driving ---------------------------------------------------------------------------

    def apply(self, drive: Drive | None = None) -> Applied:
        """`mc apply --auto-approve`, in-process: plan HEAD, apply, drive until settled."""
        return self.apply_now(drive or Drive())

    # --- reading the observed state --------------------------------------------------------

    def step_row(self, run: str, sid: str) -> TaskRow:
        return self.task_row(step_task_name(run, sid))

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
        return self.runs(step_task_name(run, sid))

    def all_runs(self) -> list[RunRow]:
        with self.state() as state:
            return state.reader.runs(limit=10_000)

    def task_json(self, run: str, sid: str, attempt: int = -1) -> dict[str, Any]:
        """The task.json the step's agent was given on one of its runs (default: the last)."""
        recorded = self.runs_of(run, sid)[attempt].workspace
        assert recorded is not None
        workspace = Path(recorded)
        data: dict[str, Any] = json.loads((workspace / "task.json").read_text())
        return data

    def mark(self, task: str, label: str, seq: int = 1) -> dict[str, Any] | None:
        """What the agent of `task` wrote with mark(label) on its run number `seq`."""
        path = self.scratch / "marks" / f"{task}.{seq}.{label}"
        return json.loads(path.read_text()) if path.exists() else None


@pytest.fixture
def repo(tmp_path: Path) -> WfRepo:
    """A mission with the worker, verifier, flaky and waiter agents; nothing committed yet."""
    return WfRepo(tmp_path / "mission")
