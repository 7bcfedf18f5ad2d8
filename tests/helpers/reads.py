"""Every read command, run through the real CLI while another `mc` holds the state (`mc apply`
driving a slow agent, or `mc serve`): each must answer and say where its answer came from.

`held_mission` writes the mission both tests use: a slow agent that waits for a release file,
a quick one that leaves memory and a content drop, a workflow run, and a task that fails once
(for `mc retry` through the holder).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from helpers.exec_repo import ExecRepo
from helpers.waiting import wait_until

# (command line, text its stdout must hold) — every read command of issue 15, item 2
READS: list[tuple[tuple[str, ...], str]] = [
    (("status",), "Mission: held"),
    (("tasks",), "long"),
    (("task", "long"), "Task long"),
    (("events",), "resource.created"),
    (("runs",), "long"),
    (("runs", "-w"), "wf-1"),
    (("agents",), "slow"),
    (("approvals",), "Decisions"),
    (("workflows",), "wf"),
    (("run-status", "wf-1"), "Workflow run wf-1"),
    (("plan",), "Plan for commit"),
    (("logs", "long"), "slow agent at work"),
    (("memory", "quick"), "last_task"),
    (("drops", "quick-one"), "report.txt"),
    (("explain", "Task/long"), "why not running"),
]

SLOW = """
import time
print("slow agent at work", flush=True)
mark(Path({started!r}))
deadline = time.monotonic() + 120
while not Path({release!r}).exists() and time.monotonic() < deadline:
    time.sleep(0.05)
result(status="done", output="slow done", cost_usd=0.25)
"""

QUICK = """
(OUT / "report.txt").write_text("a report")
result(status="done", output="quick", memory={"agent": {"last_task": TASK["task"]}})
"""

FLAKY = """
if ATTEMPT == 1:
    result(status="failed", error="broken on purpose")
else:
    result(status="done", output="fixed")
"""


def held_mission(repo: ExecRepo) -> tuple[Path, Path]:
    """Write and commit the mission; (started marker, release file) of the slow agent."""
    started, release = repo.scratch / "slow.started", repo.scratch / "slow.release"
    code = SLOW.format(started=str(started), release=str(release))
    repo.agent("slow", code, timeout="3m", concurrency=1)
    repo.agent("quick", QUICK)
    repo.agent("flaky", FLAKY)
    repo.write_doc("mission.yaml", "Mission", "held", {})
    repo.task("quick-one", agent="quick")
    repo.task("broken", agent="flaky")
    repo.task("long", agent="slow", depends_on=["quick-one"], priority=10)
    repo.task("long-2", agent="slow", depends_on=["quick-one"])  # waits for the one slot
    repo.write_doc(
        "workflows/wf.yaml", "Workflow", "wf", {"steps": [{"id": "s", "agent": "quick"}]}
    )
    repo.write_doc("runs/wf-1.yaml", "WorkflowRun", "wf-1", {"workflow": "wf"})
    repo.commit("a mission with a slow agent")
    return started, release


def check_reads(repo: ExecRepo, holder: str, pid: int) -> None:
    """Each read command answers (exit 0, its content) and names `holder` and `pid` on stderr."""
    source = f"(from `{holder}`, pid {pid}, which holds the state)"
    for args, expected in READS:
        done = repo.mc(*args)
        shown = " ".join(args)
        assert done.returncode == 0, f"mc {shown} failed: {done.stderr}"
        assert expected in done.stdout, f"mc {shown}: {expected!r} not in {done.stdout!r}"
        assert source in done.stderr, f"mc {shown} did not say its source: {done.stderr!r}"


def task_state(repo: ExecRepo, name: str) -> str:
    body = json.loads(repo.mc("task", name, "--json").stdout)
    state: str = body["state"]
    return state


def wait_state(repo: ExecRepo, name: str, state: str, timeout: float = 60.0) -> None:
    wait_until(lambda: task_state(repo, name) == state, timeout, f"{name} to be {state}")


def stop(proc: subprocess.Popen[str], timeout: float = 60.0) -> tuple[str, str]:
    """Wait for a background `mc` to end on its own; its output."""
    out, err = proc.communicate(timeout=timeout)
    return out, err
