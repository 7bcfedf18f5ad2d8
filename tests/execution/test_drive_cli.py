"""`mc apply` driving work as users run it: a killed reconciler, Ctrl-C, --no-wait, and the
read-outs (`mc runs --json`, `mc logs`). Every command here is the installed `mc` script."""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers.exec_repo import ExecRepo, process_alive, wait_for
from helpers.mc import flat, reap
from helpers.sandboxed import kill_marked_run, marked_leader, marked_pid, read_marker, run_processes
from helpers.waiting import wait_until

pytestmark = pytest.mark.timeout(90)

# First run: record its pid in MARKER and sleep; any later run finishes at once.
SLEEPER = """
marker = Path(os.environ["MARKER"])
if not marker.exists():
    print("first run, sleeping", flush=True)
    mark(marker)
    time.sleep(60)
print("marker found, finishing")
result(status="done", output="finished")
"""


def _sleeper(repo: ExecRepo, **agent: Any) -> Path:
    marker = repo.scratch / "marker"
    repo.agent("sleeper", SLEEPER, env={"MARKER": str(marker)}, **agent)
    repo.task("nap", agent="sleeper")
    repo.commit()
    return marker


@pytest.fixture
def sleeper_repo(repo: ExecRepo) -> Iterator[tuple[ExecRepo, Path]]:
    marker = _sleeper(repo)
    yield repo, marker
    kill_marked_run(marker)


@pytest.fixture
def unconfined_sleeper_repo(repo: ExecRepo) -> Iterator[tuple[ExecRepo, Path]]:
    """The sleeper with `sandbox: none`: only an unconfined agent outlives a killed mc (a
    sandbox dies with the mc that started it: bwrap --die-with-parent)."""
    marker = _sleeper(repo, sandbox="none")
    yield repo, marker
    kill_marked_run(marker)


def agent_pid(marker: Path) -> int:
    """The host pid of the run's leader (bwrap, for a sandboxed agent): what mc records."""
    wait_for(marker.exists, 30, "the agent to start")
    return marked_leader(marker)


@pytest.mark.parametrize("pid_recorded", [True, False], ids=["running", "just-spawned"])
def test_a_killed_reconciler_is_recovered_by_the_next_apply(
    unconfined_sleeper_repo: tuple[ExecRepo, Path], pid_recorded: bool
) -> None:
    """kill -9 `mc apply` mid-run: the next apply kills the orphan, records the run as
    abandoned (not a failed attempt) and finishes the task. The run row is found either
    RUNNING with the agent's pid, or (killed right after the spawn) as the LAUNCHING intent,
    in which case the orphan is found by its MC_RUN_ID."""
    repo, marker = unconfined_sleeper_repo
    first = repo.mc_background("apply", "--auto-approve")
    try:
        pid = agent_pid(marker)
        if pid_recorded:
            time.sleep(1.5)  # the loop records a pid once the run lives past 0.2 s
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
    finally:
        reap(first)
    assert first.returncode == -signal.SIGKILL
    assert process_alive(pid), "the agent outlived its reconciler (the premise of recovery)"
    [left] = repo.runs("nap")  # readable now: the dead writer's lock is gone
    assert left.ended_at is None
    if pid_recorded:
        assert (left.state, left.pid) == ("RUNNING", pid)
    else:
        assert left.state in ("LAUNCHING", "RUNNING")
        assert left.pid in (None, pid)

    second = repo.mc("apply", "--auto-approve")

    assert second.returncode == 0, second.stdout + second.stderr
    assert "Recovered 1 run(s)" in second.stdout
    assert not process_alive(pid), "recovery killed the orphaned agent"
    row = repo.task_row("nap")
    assert (row.state, row.output) == ("DONE", "finished")
    assert (row.attempts, row.abandoned) == (1, 1)  # the lost run is not a failed attempt
    orphan, rerun = repo.runs("nap")
    assert orphan.id == left.id
    assert (orphan.state, orphan.status, orphan.error_class) == ("ENDED", "abandoned", "abandoned")
    assert orphan.error is not None and "stopped while it ran" in orphan.error
    assert rerun.status == "done"
    assert [e.subject for e in repo.events("run.recovered")] == [f"Run/{orphan.id}"]


def test_a_sandboxed_agent_dies_with_its_killed_reconciler_and_is_run_again(
    sleeper_repo: tuple[ExecRepo, Path],
) -> None:
    """kill -9 `mc apply` mid-run: the sandbox (and everything in it) is gone within 3 s, and
    the next apply records the lost run as abandoned and runs the task again."""
    repo, marker = sleeper_repo
    first = repo.mc_background("apply", "--auto-approve")
    try:
        leader = agent_pid(marker)
        _pid, run_id = read_marker(marker)
        time.sleep(1.5)  # recorded RUNNING with bwrap's pid
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        wait_for(lambda: not run_processes(run_id), 3, "the sandbox to die with its mc")
    finally:
        reap(first)
    [left] = repo.runs("nap")
    assert (left.state, left.pid) == ("RUNNING", leader)
    status = repo.mc("status")
    assert status.returncode == 0, status.stderr
    assert (
        "1 run(s) in flight, but no mc process is driving them:"
        " run `mc apply` or `mc serve` to recover them"
    ) in flat(status.stdout)

    second = repo.mc("apply", "--auto-approve")

    assert second.returncode == 0, second.stdout + second.stderr
    assert "Recovered 1 run(s)" in second.stdout
    row = repo.task_row("nap")
    assert (row.state, row.output, row.attempts, row.abandoned) == ("DONE", "finished", 1, 1)
    orphan, rerun = repo.runs("nap")
    assert orphan.error is not None and "stopped while it ran" in orphan.error
    assert "still running" not in orphan.error  # nothing of it was left to stop
    assert rerun.status == "done"


@pytest.mark.parametrize(
    ("stop", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["ctrl-c", "sigterm"]
)
def test_ctrl_c_stops_cleanly_and_the_next_apply_carries_on(
    sleeper_repo: tuple[ExecRepo, Path], stop: signal.Signals, code: int
) -> None:
    """Ctrl-C, or SIGTERM from a timeout, CI or systemd: the agent is stopped, its run
    recorded as canceled, the task requeued; exit 128 + the signal's number."""
    repo, marker = sleeper_repo
    first = repo.mc_background("apply", "--auto-approve")
    try:
        pid = agent_pid(marker)
        first.send_signal(stop)
        out, err = first.communicate(timeout=30)
    finally:
        reap(first)

    assert first.returncode == code, out + err
    assert "Stopped. Running agents were stopped" in out
    assert not process_alive(pid), "Ctrl-C stopped the running agent"
    row = repo.task_row("nap")
    assert (row.state, row.attempts) == ("INBOX", 0)  # requeued, not counted as an attempt
    [stopped] = repo.runs("nap")
    assert (stopped.state, stopped.status, stopped.error_class) == ("ENDED", "canceled", "canceled")

    second = repo.mc("apply", "--auto-approve")

    assert second.returncode == 0, second.stdout + second.stderr
    row = repo.task_row("nap")
    assert (row.state, row.attempts, row.output) == ("DONE", 1, "finished")
    assert "Recovered" not in second.stdout  # the first apply left nothing behind


def test_no_wait_only_records(repo: ExecRepo) -> None:
    repo.agent("echo", 'result(status="done", output="ran")')
    repo.task("later", agent="echo")
    repo.commit()

    done = repo.mc("apply", "--auto-approve", "--no-wait")

    assert done.returncode == 0, done.stdout + done.stderr
    assert "Apply complete." in done.stdout
    row = repo.task_row("later")
    assert (row.state, row.attempts) == ("INBOX", 0)
    assert repo.runs("later") == []
    assert not (repo.mc_dir / "work").exists()

    driven = repo.mc("apply", "--auto-approve")

    assert driven.returncode == 0
    assert "No changes to apply." in driven.stdout
    assert repo.task_row("later").state == "DONE"


CHATTY = """
print("hello from the agent")
print("step 2 of 2")
print("a warning", file=sys.stderr)
result(status="done", output="chatted")
"""


def test_logs_print_the_agents_output(repo: ExecRepo) -> None:
    repo.agent("chatty", CHATTY)
    repo.task("talk", agent="chatty")
    repo.commit()
    repo.apply()

    both = repo.mc("logs", "talk")
    only_out = repo.mc("logs", "talk", "--stream", "stdout")
    [run] = repo.runs("talk")
    by_id = repo.mc("logs", run.id, "--stream", "stdout")
    missing = repo.mc("logs", "no-such-task")

    assert both.returncode == 0, both.stderr
    assert "[stdout] hello from the agent" in both.stdout
    assert "[stderr] a warning" in both.stdout
    assert only_out.stdout == "hello from the agent\nstep 2 of 2\n"
    assert by_id.stdout == only_out.stdout
    assert missing.returncode == 1
    assert "no run or task with runs named 'no-such-task'" in missing.stderr


RUN_KEYS: dict[str, type | tuple[type, ...]] = {
    "id": str,
    "task": str,
    "attempt": int,
    "agent": str,
    "state": str,
    "status": str,
    "error_class": (str, type(None)),
    "error": (str, type(None)),
    "exit_code": int,
    "pid": int,
    "started_at": str,
    "ended_at": str,
    "cost_usd": str,
    "tokens": int,
    "workspace": str,
    "output": (str, dict, list, int, float, bool, type(None)),  # its task's latest result only
    "outputs": (dict, type(None)),
}

TWICE = """
if ATTEMPT == 1:
    sys.exit(2)
result(status="done", output="ok", cost_usd=0.25, tokens=7)
"""


def test_runs_json_shape(repo: ExecRepo) -> None:
    repo.agent("twice", TWICE)
    repo.task("shape", agent="twice", retry={"max_attempts": 2})
    repo.commit()
    repo.apply()

    listed = repo.mc("runs", "--json")
    one_task = repo.mc("runs", "shape", "--json", "--limit", "1")

    assert listed.returncode == 0, listed.stderr
    runs = json.loads(listed.stdout)
    assert isinstance(runs, list) and len(runs) == 2
    for run in runs:
        assert set(run) == set(RUN_KEYS)
        for key, kind in RUN_KEYS.items():
            assert isinstance(run[key], kind), (key, run[key])
    newest, oldest = runs
    assert (newest["attempt"], newest["status"], newest["exit_code"]) == (2, "done", 0)
    assert (newest["cost_usd"], newest["tokens"]) == ("0.25", 7)  # normalized, full precision
    assert (newest["output"], oldest["output"]) == ("ok", None)
    assert (oldest["attempt"], oldest["status"], oldest["exit_code"]) == (1, "retry", 2)
    assert (oldest["error_class"], oldest["error"]) == ("temporary", "exited with code 2")
    assert newest["started_at"] >= oldest["ended_at"]
    assert all(r["state"] == "ENDED" and r["task"] == "shape" for r in runs)
    assert json.loads(one_task.stdout) == [newest]


def test_the_state_lock_is_reported_while_apply_runs(
    sleeper_repo: tuple[ExecRepo, Path],
) -> None:
    """While `mc apply` drives work it holds the state: a read is answered through it (and says
    so); a second `mc apply` is refused in one line."""
    repo, marker = sleeper_repo
    first = repo.mc_background("apply", "--auto-approve")
    try:
        agent_pid(marker)
        read = repo.mc("runs", "--json")
        status = repo.mc("status")
        busy = repo.mc("apply", "--auto-approve")
        first.send_signal(signal.SIGINT)
        first.communicate(timeout=30)
    finally:
        reap(first)
    assert read.returncode == 0 and json.loads(read.stdout)[0]["state"] == "RUNNING"
    assert f"(from `mc apply`, pid {first.pid}, which holds the state)" in read.stderr
    assert status.returncode == 0 and "no mc process is driving" not in status.stdout
    assert busy.returncode == 1
    assert "locked" in busy.stderr and "Traceback" not in busy.stderr
    assert len(busy.stderr.strip().splitlines()) == 1


def test_ctrl_c_also_stops_what_the_agent_started(repo: ExecRepo) -> None:
    """Ctrl-C also stops what the agent itself started (its whole process group)."""
    marker = repo.scratch / "grandchild"
    repo.agent(
        "parent",
        """
        import subprocess
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        mark(os.environ["MARKER"], child.pid)
        time.sleep(60)
        """,
        env={"MARKER": str(marker)},
    )
    repo.task("spawner", agent="parent")
    repo.commit()
    first = repo.mc_background("apply", "--auto-approve")
    try:
        wait_for(marker.exists, 30, "the agent to start")
        grandchild = marked_pid(marker)
        first.send_signal(signal.SIGINT)
        first.communicate(timeout=30)
    finally:
        reap(first)
        kill_marked_run(marker)
    assert first.returncode == 130
    wait_for(lambda: not process_alive(grandchild), 5, "the grandchild to be gone")


def test_a_piped_apply_prints_a_line_per_dispatch_as_it_happens(
    sleeper_repo: tuple[ExecRepo, Path],
) -> None:
    """stdout not a terminal (CI, `> file`): no live view, but the dispatch is printed while
    the agent still runs, and the finished run once it ends."""
    repo, marker = sleeper_repo
    first = repo.mc_background("apply", "--auto-approve")
    lines: list[str] = []
    assert first.stdout is not None
    reader = threading.Thread(target=lambda: lines.extend(first.stdout or ()), daemon=True)
    reader.start()
    try:
        agent_pid(marker)
        dispatched = wait_until(
            lambda: [line for line in lines if " dispatch " in line], 30, "a dispatch line"
        )
        assert first.poll() is None, "the line came while the apply still ran"
        marker.unlink()  # the next run of the sleeper finishes at once
        first.send_signal(signal.SIGTERM)
        first.wait(timeout=30)
        reader.join(timeout=10)
    finally:
        reap(first)
    [line] = dispatched
    assert "task=nap" in line and "dispatched to sleeper" in line
    finished = [line for line in lines if " run.finished " in line]
    assert finished and "task=nap" in finished[0] and "status=canceled" in finished[0], lines
