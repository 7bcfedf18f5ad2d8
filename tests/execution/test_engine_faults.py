"""Regression tests for the engine faults of issue 11, through a real `mc serve` and `mc apply`.

Each test builds a mission repo in tmp_path, runs the real CLI as a subprocess and reads what
happened through the server's JSON API (while serve holds the state) or the state file (after).
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from helpers.exec_repo import ExecRepo, doc, git, kill_if_alive, process_alive, wait_for
from helpers.mc import reap
from helpers.sandboxed import marked_leader

pytestmark = pytest.mark.timeout(90)

DELETE_IS_LOW = {"rules": [{"name": "deletes", "match": {"action": ["delete"]}, "decide": "LOW"}]}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Served:
    """A running `mc serve` subprocess and its JSON API."""

    def __init__(self, repo: ExecRepo, proc: subprocess.Popen[str], port: int) -> None:
        self.repo, self.proc, self.url = repo, proc, f"http://127.0.0.1:{port}"

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(self.url + path, timeout=5) as resp:
            return json.loads(resp.read())

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(self.url + "/healthz", timeout=2) as resp:
                return bool(resp.status == 200)
        except (OSError, urllib.error.URLError):
            return False

    def task(self, name: str) -> dict[str, Any] | None:
        try:
            found: dict[str, Any] = self.get(f"/api/tasks/{name}")
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return None
            raise
        return found

    def state_of(self, name: str) -> str | None:
        found = self.task(name)
        return None if found is None else str(found["state"])

    def events(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self.get("/api/events?limit=200")["events"]
        return found


@contextmanager
def serving(repo: ExecRepo) -> Iterator[Served]:
    port = _free_port()
    proc = repo.mc_background("serve", "--port", str(port), "--resync", "600")
    served = Served(repo, proc, port)
    try:
        wait_for(lambda: served.healthy() or proc.poll() is not None, 30, "mc serve to listen")
        assert proc.poll() is None, proc.communicate()[1]
        yield served
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.communicate(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate()


def _pid(path: Path, within: float = 20) -> int:
    """The host pid of the leader of the run that wrote `path` (bwrap, when sandboxed)."""
    wait_for(path.exists, within, f"agent to write {path.name}")
    return marked_leader(path)


def _sleeper(repo: ExecRepo, name: str, marker: Path, seconds: int = 60) -> None:
    repo.agent(name, f"mark({str(marker)!r})\ntime.sleep({seconds})\nresult(status='done')\n")


def _transitions(events: list[dict[str, Any]], subject: str) -> list[dict[str, Any]]:
    return [e["data"] for e in events if e["kind"] == "task.transition" and e["subject"] == subject]


# --- fault 1 (engine side) and fault 2: a run's progress re-checks its task -----------------


def test_serve_survives_a_commit_deleting_the_task_whose_agent_runs(
    repo: ExecRepo,
) -> None:
    marker = repo.scratch / "longjob.pid"
    repo.mission(policy=DELETE_IS_LOW)
    _sleeper(repo, "sleeper", marker)
    repo.commit("mission")
    with serving(repo) as served:
        repo.task("longjob", agent="sleeper")
        repo.commit("add longjob")
        pid = _pid(marker)
        try:
            # fault 2: marked running while it runs, not when it ends 60 s later
            wait_for(lambda: served.state_of("longjob") == "IN_PROGRESS", 5, "IN_PROGRESS")
            [attempt] = served.get("/api/tasks/longjob")["runs"]
            assert (attempt["run"]["state"], attempt["run"]["pid"]) == ("RUNNING", pid)
            git(repo.root, "rm", "-q", "tasks/longjob.yaml")
            repo.commit("delete longjob")
            wait_for(lambda: not process_alive(pid), 15, "the deleted task's agent to stop")
            wait_for(lambda: served.state_of("longjob") == "CANCELED", 10, "longjob CANCELED")
            time.sleep(0.5)  # a few more ticks: the run's end must not bring serve down
            assert served.healthy() and served.proc.poll() is None
        finally:
            kill_if_alive(pid)
    [run_row] = repo.runs("longjob")
    assert (run_row.state, run_row.status, run_row.error_class) == ("ENDED", "canceled", "canceled")
    assert repo.task_row("longjob").state == "CANCELED"


def test_serve_survives_deleting_a_running_workflow_run(repo: ExecRepo) -> None:
    marker = repo.scratch / "step.pid"
    repo.mission(policy=DELETE_IS_LOW)
    _sleeper(repo, "sleeper", marker)
    repo.write("workflows/wf.yaml", doc("Workflow", "wf", {"steps": [
        {"id": "work", "agent": "sleeper", "prompt": "work"},
        {"id": "after", "agent": "sleeper", "depends_on": ["work"], "prompt": "after"},
    ]}))  # fmt: skip
    repo.commit("mission")
    with serving(repo) as served:
        repo.write("runs/r1.yaml", doc("WorkflowRun", "r1", {"workflow": "wf"}))
        repo.commit("start r1")
        pid = _pid(marker)
        try:
            wait_for(lambda: served.state_of("r1.work") == "IN_PROGRESS", 5, "step running")
            git(repo.root, "rm", "-q", "runs/r1.yaml")
            repo.commit("delete r1")
            wait_for(lambda: not process_alive(pid), 15, "the step's agent to stop")
            wait_for(lambda: served.state_of("r1.work") == "CANCELED", 10, "step CANCELED")
            time.sleep(0.5)
            assert served.healthy() and served.proc.poll() is None
            kinds = [e["kind"] for e in served.events()]
            assert "reconcile.error" not in kinds
        finally:
            kill_if_alive(pid)
    [run_row] = repo.runs("r1.work")
    assert (run_row.state, run_row.status) == ("ENDED", "canceled")


def test_a_launched_run_is_marked_running_in_the_cycle_it_is_spawned(
    repo: ExecRepo,
) -> None:
    marker = repo.scratch / "nap.pid"
    _sleeper(repo, "napper", marker, seconds=3)
    repo.commit("mission")
    with serving(repo) as served:
        repo.task("nap", agent="napper")
        repo.commit("add nap")
        pid = _pid(marker)
        wait_for(lambda: served.state_of("nap") == "IN_PROGRESS", 2, "IN_PROGRESS")
        assert process_alive(pid), "marked running while the agent still runs"
        metrics = urllib.request.urlopen(served.url + "/metrics", timeout=5).read().decode()
        assert 'mc_tasks{state="IN_PROGRESS"} 1' in metrics
        wait_for(lambda: served.state_of("nap") == "DONE", 20, "nap DONE")
        found = served.events()
    hops = {(e["from"], e["to"]): e for e in _transitions(found, "Task/nap")}
    started = next(e for e in found if e["data"].get("to") == "IN_PROGRESS")
    assigned = next(e for e in found if e["data"].get("to") == "ASSIGNED")
    gap = datetime.fromisoformat(started["time"]) - datetime.fromisoformat(assigned["time"])
    assert gap.total_seconds() < 1.0, gap
    assert hops["ASSIGNED", "IN_PROGRESS"]["reason"] == "agent started"


# --- fault 3: a verifier's send-back is a verdict, not a failed run --------------------------


def test_a_verifier_sending_work_back_is_not_quarantined(repo: ExecRepo) -> None:
    repo.agent("coder", "result(status='done', output=f'draft {ATTEMPT}')\n")
    # sends the work back five times (the loop breaker trips at 5 failures of 10), then passes
    repo.agent(
        "checker",
        "rounds = TASK['workflow']['rework'] if TASK['workflow'] else 99\n"
        "if rounds < 5:\n"
        "    result(status='retry', error=f'not yet ({rounds})')\n"
        "else:\n"
        "    result(status='done', output='approved')\n",
    )
    repo.write("workflows/wf.yaml", doc("Workflow", "wf", {"steps": [
        {"id": "implement", "agent": "coder", "prompt": "write"},
        {"id": "verify", "agent": "checker", "depends_on": ["implement"],
         "verifies": "implement", "max_rework": 6, "prompt": "check"},
    ]}))  # fmt: skip
    repo.write("runs/r1.yaml", doc("WorkflowRun", "r1", {"workflow": "wf"}))
    repo.commit()

    applied = repo.mc("apply", "--auto-approve")

    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert [e for e in repo.events("agent.quarantined")] == []
    assert repo.task_row("r1.verify").state == "DONE"
    assert len(repo.runs("r1.verify")) == 6
    with repo.state() as state:
        [run] = state.reader.workflow_runs(["r1"])
        status = state.reader.agent_status_rows()
    assert run.status == "SUCCEEDED"
    assert "checker" not in status
    # a later start (serve reloads on every commit) does not count them either: the
    # checker's next run, a plain task, finds no failures in its breaker window
    repo.task("another-check", agent="checker")
    repo.commit("one more check")
    again = repo.mc("apply", "--auto-approve")
    assert again.returncode == 0, again.stdout + again.stderr
    assert repo.task_row("another-check").state == "DONE"
    assert repo.events("agent.quarantined") == []


# --- fault 4: one key and one reason per transition event; no run status flapping ------------


def test_each_transition_event_has_its_own_key_and_reason(repo: ExecRepo) -> None:
    repo.agent("quick", "result(status='done', output='ok')\n")
    repo.agent(
        "flaky",
        "if ATTEMPT == 1:\n    result(status='retry', error='first try fails')\n"
        "else:\n    result(status='done', output='ok')\n",
    )
    for n in range(6):
        repo.task(f"q{n}", agent="quick")
    repo.write("workflows/wf.yaml", doc("Workflow", "wf", {"steps": [
        {"id": "first", "agent": "flaky", "prompt": "a",
         "retry": {"max_attempts": 3, "initial_interval": "50ms"}},
        {"id": "second", "agent": "quick", "depends_on": ["first"], "prompt": "b"},
    ]}))  # fmt: skip
    repo.write("runs/r1.yaml", doc("WorkflowRun", "r1", {"workflow": "wf"}))
    repo.commit()

    applied = repo.mc("apply", "--auto-approve")

    assert applied.returncode == 0, applied.stdout + applied.stderr
    moves = [e.data for e in repo.events("task.transition")]
    keys = [m["key"] for m in moves]
    assert len(keys) == len(set(keys)), "every transition event has its own idempotency key"
    for m in moves:
        assert m["key"].split(":")[1] == f"{m['from']}>{m['to']}", m
        if (m["from"], m["to"]) == ("ASSIGNED", "IN_PROGRESS"):
            assert m["reason"] == "agent started", m
    flow = [e.kind for e in repo.events("workflow_run.running")]
    statuses = [e.kind.removeprefix("workflow_run.") for e in _run_events(repo, "WorkflowRun/r1")]
    assert statuses[-1] == "succeeded" and "pending" not in statuses[1:], statuses
    assert len(flow) == 1, statuses


def _run_events(repo: ExecRepo, subject: str) -> list[Any]:
    with repo.state() as state:
        return [
            e
            for e in state.reader.events(limit=10_000)
            if e.subject == subject and e.kind.startswith("workflow_run.")
        ]


# --- fault 7: recovery keeps a result the agent already wrote --------------------------------


def test_recovery_records_a_finished_agents_result_instead_of_running_it_again(
    repo: ExecRepo,
) -> None:
    ledger, marker = repo.scratch / "ledger", repo.scratch / "once.pid"
    repo.agent(
        "once",
        f"with open({str(ledger)!r}, 'a') as f:\n"
        "    f.write(os.environ['MC_RUN_ID'] + '\\n')\n"
        "result(status='done', output='from the first run')\n"
        "parent = os.getppid()\n"
        f"mark({str(marker)!r})\n"
        "deadline = time.time() + 30\n"
        "while os.getppid() == parent and time.time() < deadline:\n"
        "    time.sleep(0.02)\n",  # exits on its own once mc is gone: finished, unrecorded
    )
    repo.task("once", agent="once")
    repo.commit()
    first = repo.mc_background("apply", "--auto-approve")
    try:
        pid = _pid(marker)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        wait_for(lambda: not process_alive(pid), 10, "the agent to finish on its own")
    finally:
        reap(first)
    [left] = repo.runs("once")
    assert left.ended_at is None  # mc died before it recorded the end

    second = repo.mc("apply", "--auto-approve")

    assert second.returncode == 0, second.stdout + second.stderr
    row = repo.task_row("once")
    assert (row.state, row.output, row.attempts, row.abandoned) == (
        "DONE",
        "from the first run",
        1,
        0,
    )
    [run] = repo.runs("once")
    assert (run.id, run.state, run.status) == (left.id, "ENDED", "done")
    assert ledger.read_text().split() == [left.id], "the agent ran once, under one MC_RUN_ID"
    moves = [(m.data["from"], m.data["to"]) for m in repo.events("task.transition")]
    assert moves == [("INBOX", "ASSIGNED"), ("ASSIGNED", "IN_PROGRESS"), ("IN_PROGRESS", "DONE")]


# A sandbox dies with the mc that started it (bwrap --die-with-parent), so only an agent run
# with `sandbox: none` is left running for recovery to stop (test_drive_cli covers the sandbox).
UNCONFINED = {"sandbox": "none"}


def _crash_while_agent_runs(repo: ExecRepo, marker: Path) -> None:
    """`mc apply` SIGKILLed once the (unconfined) agent wrote `marker`, then a second
    `mc apply`, which must stop the still-running orphan and carry on."""
    first = repo.mc_background("apply", "--auto-approve")
    pid = 0
    try:
        pid = _pid(marker)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        assert process_alive(pid), "the agent outlives its mc"
        second = repo.mc("apply", "--auto-approve")
        assert not process_alive(pid), "recovery stopped the orphan"
    finally:
        reap(first)
        if pid:
            kill_if_alive(pid)
    assert second.returncode == 0, second.stdout + second.stderr


def test_recovery_keeps_the_result_of_an_agent_it_had_to_stop(
    repo: ExecRepo,
) -> None:
    """An agent that wrote a complete, valid result.json and then lingered (cleanup, a hung
    exit) is stopped by recovery, and its result is recorded: it is not run again."""
    ledger, marker = repo.scratch / "ledger", repo.scratch / "lingers.pid"
    repo.agent(
        "lingers",
        f"with open({str(ledger)!r}, 'a') as f:\n"
        "    f.write(os.environ['MC_RUN_ID'] + '\\n')\n"
        "result(status='done', output=f'run {ATTEMPT}', cost_usd=0.25, tokens=7)\n"
        f"mark({str(marker)!r})\n"
        "time.sleep(60)\n",
        **UNCONFINED,
    )
    repo.task("lingers", agent="lingers")
    repo.commit()

    _crash_while_agent_runs(repo, marker)

    row = repo.task_row("lingers")
    assert (row.state, row.output, row.attempts, row.abandoned) == ("DONE", "run 1", 1, 0)
    [run] = repo.runs("lingers")
    assert (run.state, run.status, run.cost_usd, run.tokens) == (
        "ENDED",
        "done",
        Decimal("0.25"),
        7,
    )
    assert ledger.read_text().split() == [run.id], "the agent ran once, under one MC_RUN_ID"
    assert [e.subject for e in repo.events("run.recovered")] == [f"Run/{run.id}"]


def test_recovery_reruns_an_agent_it_stopped_mid_write(repo: ExecRepo) -> None:
    """A result.json cut short (not valid JSON) next to a process recovery had to stop is no
    result: that run is abandoned (not an attempt failure) and the task runs again."""
    marker = repo.scratch / "midwrite.pid"
    repo.agent(
        "midwrite",
        "if ATTEMPT == 1:\n"
        '    Path(os.environ[\'MC_RESULT_JSON\']).write_text(\'{"status": "done", "outp\')\n'
        f"    mark({str(marker)!r})\n"
        "    time.sleep(60)\n"
        "result(status='done', output=f'run {ATTEMPT}')\n",
        **UNCONFINED,
    )
    repo.task("midwrite", agent="midwrite")
    repo.commit()

    _crash_while_agent_runs(repo, marker)

    row = repo.task_row("midwrite")
    assert (row.state, row.output, row.abandoned) == ("DONE", "run 2", 1)
    orphan, rerun = repo.runs("midwrite")
    assert (orphan.status, orphan.error_class) == ("abandoned", "abandoned")
    assert orphan.error is not None and "still running and was stopped" in orphan.error
    assert rerun.status == "done"
