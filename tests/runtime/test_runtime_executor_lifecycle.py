"""The executor as the drive loop sees it: secrets, cancel, shutdown, concurrency, wait()."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from runtime_harness import GRACE_S, Agents, drive, gone_soon, run_all, run_one

from reconciler.runtime.local import LocalExecutor
from reconciler.runtime.procs import is_same_process_alive
from reconciler.runtime.types import Executor, ExecutorError, Outcome

pytestmark = pytest.mark.timeout(30)

SECRET = "sk-live-0123456789abcdef"

SLEEPER = """
import os, subprocess, time
kid = subprocess.Popen(["sleep", "300"])
open(os.path.join(os.environ["MC_WORKSPACE"], "kid.pid"), "w").write(str(kid.pid))
print("started", flush=True)
time.sleep(300)
"""


def test_local_executor_satisfies_the_executor_port() -> None:
    ex: Executor = LocalExecutor()
    ex.shutdown()


def test_secret_reaches_the_child_but_no_file_the_executor_writes(
    executor: LocalExecutor, agents: Agents, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MC_RECONCILER_TOKEN", "reconciler-only-secret")
    code = """
import json, os, sys, hashlib
secret = os.environ["API_KEY"]
print("key digest", hashlib.sha256(secret.encode()).hexdigest())
print("oops, leaking", secret, file=sys.stderr)  # the log must still not hold it
json.dump({"status": "done", "output": {
    "has_key": secret == "sk-live-0123456789abcdef",
    "reconciler_token": os.environ.get("MC_RECONCILER_TOKEN"),
}}, open(os.environ["MC_RESULT_JSON"], "w"))
"""
    req = agents.request(code, env={"API_KEY": SECRET})
    outcome = run_one(executor, req)
    assert outcome.output == {"has_key": True, "reconciler_token": None}
    assert "API_KEY" not in (req.workspace / "task.json").read_text()
    written_by_executor = ["task.json", "stdout.log", "stderr.log"]
    for name in written_by_executor:
        assert SECRET.encode() not in (req.workspace / name).read_bytes(), name
    assert "oops, leaking [redacted]" in (req.workspace / "stderr.log").read_text()
    for dirpath, _, filenames in os.walk(req.workspace):
        for filename in filenames:
            path = os.path.join(dirpath, filename)
            if filename != "result.json":
                assert SECRET.encode() not in Path(path).read_bytes(), path


def test_secret_in_an_error_message_is_redacted(executor: LocalExecutor, agents: Agents) -> None:
    code = """
import json, os
error = "auth failed for key " + os.environ["API_KEY"]
json.dump({"status": "failed", "error": error}, open(os.environ["MC_RESULT_JSON"], "w"))
"""
    outcome = run_one(executor, agents.request(code, env={"API_KEY": SECRET}))
    assert outcome.status == "failed"
    assert outcome.error == "auth failed for key [redacted]"


def test_explicit_secret_values_replace_the_default(
    executor: LocalExecutor, agents: Agents
) -> None:
    code = "import os\nprint(os.environ['PIN'], os.environ['MODEL_NAME'])"
    req = agents.request(
        code,
        protocol="stdout",
        env={"PIN": "4711", "MODEL_NAME": "claude-sonnet-4"},
        secret_values=("4711",),
    )
    assert run_one(executor, req).output == "[redacted] claude-sonnet-4"


def test_cancel_stops_the_whole_group(executor: LocalExecutor, agents: Agents) -> None:
    req = agents.request(SLEEPER)
    handle = executor.launch(req)
    kid = _wait_for_pid_file(req.workspace / "kid.pid")
    assert executor.running() == [req.run_id]

    executor.cancel(req.run_id, "user asked")
    outcome = drive(executor, {req.run_id})[req.run_id]

    assert outcome.status == "canceled"
    assert outcome.error == "canceled: user asked"
    assert not is_same_process_alive(handle.pid, handle.start_time)
    assert gone_soon(kid)
    assert executor.running() == []
    executor.cancel(req.run_id, "again")  # a finished run: nothing happens


def test_shutdown_reaps_everything_and_keeps_the_outcomes(agents: Agents) -> None:
    ex = LocalExecutor(grace_s=GRACE_S)
    stubborn = agents.request(
        """
import os, signal, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
open(os.path.join(os.environ["MC_WORKSPACE"], "ready"), "w").write(str(os.getpid()))
time.sleep(300)
"""
    )
    sleeper = agents.request(SLEEPER)
    handles = [ex.launch(stubborn), ex.launch(sleeper)]
    kid = _wait_for_pid_file(sleeper.workspace / "kid.pid")
    assert _wait_for_pid_file(stubborn.workspace / "ready") == handles[0].pid

    started = time.monotonic()
    ex.shutdown(grace_s=0.3)
    assert time.monotonic() - started < 0.3 + 2

    for handle in handles:
        assert not is_same_process_alive(handle.pid, handle.start_time)
        assert not os.path.exists(f"/proc/{handle.pid}")  # reaped, not even a zombie
    assert gone_soon(kid)
    outcomes = {o.run_id: o for o in ex.poll()}
    assert {o.status for o in outcomes.values()} == {"canceled"}
    assert outcomes[stubborn.run_id].exit_code == -9
    assert outcomes[sleeper.run_id].exit_code == -15
    assert ex.running() == []
    with pytest.raises(ExecutorError, match="shut down"):
        ex.launch(agents.request("print(1)"))


def test_a_misbehaving_run_does_not_disturb_a_concurrent_one(
    executor: LocalExecutor, agents: Agents
) -> None:
    flood = agents.request(
        "import os\nwhile True:\n    os.write(1, b'z' * 65536)",
        run_id="flood",
        timeout_s=1.5,
        log_cap_bytes=4096,
    )
    steady = agents.request(
        """
import json, os, time
for i in range(5):
    print("step", i, flush=True)
    time.sleep(0.1)
json.dump({"status": "done", "output": "steady"}, open(os.environ["MC_RESULT_JSON"], "w"))
""",
        run_id="steady",
    )
    outcomes = run_all(executor, [flood, steady])
    assert outcomes["steady"].status == "done"
    assert outcomes["steady"].output == "steady"
    assert (steady.workspace / "stdout.log").read_text().splitlines() == [
        f"step {i}" for i in range(5)
    ]
    assert outcomes["flood"].status == "retry"
    assert outcomes["flood"].error is not None
    assert outcomes["flood"].error.startswith("timed out after 1.5s")
    assert (flood.workspace / "stdout.log").stat().st_size < 4096 + 200


def test_wait_returns_when_a_run_ends_and_otherwise_blocks(
    executor: LocalExecutor, agents: Agents
) -> None:
    started = time.monotonic()
    executor.wait(0.3)  # nothing running: sleeps, does not spin
    assert 0.25 <= time.monotonic() - started < 1

    req = agents.request("import time\ntime.sleep(0.3)", protocol="stdout")
    executor.launch(req)
    started = time.monotonic()
    polls = 0
    outcomes: list[Outcome] = []
    while not outcomes:
        executor.wait(10)
        outcomes = executor.poll()
        polls += 1
    assert 0.25 <= time.monotonic() - started < 2
    assert polls < 10  # woken by the exit, not by busy polling
    assert outcomes[0].status == "done"


def test_wait_wakes_up_for_a_deadline(executor: LocalExecutor, agents: Agents) -> None:
    executor.launch(agents.request("import time\ntime.sleep(300)", timeout_s=0.4))
    started = time.monotonic()
    executor.wait(10)
    assert time.monotonic() - started < 1.5  # woke up to enforce the timeout
    executor.poll()
    assert executor.running()  # SIGTERM sent; the outcome comes with a later poll


def test_reusing_a_run_id_is_a_caller_bug(executor: LocalExecutor, agents: Agents) -> None:
    req = agents.request("import time\ntime.sleep(5)")
    executor.launch(req)
    with pytest.raises(ExecutorError, match="already in use"):
        executor.launch(req)


def test_task_json_is_what_the_caller_passed(executor: LocalExecutor, agents: Agents) -> None:
    task = {"prompt": "summarise", "inputs": {"a": [1, 2]}, "deadline": "2025-01-01T00:00:00Z"}
    req = agents.request("print('x')", task_json=task, protocol="stdout")
    run_one(executor, req)
    assert json.loads((req.workspace / "task.json").read_text()) == task


def _wait_for_pid_file(path: os.PathLike[str], within: float = 5.0) -> int:
    give_up = time.monotonic() + within
    while time.monotonic() < give_up:
        try:
            return int(Path(path).read_text())
        except (OSError, ValueError):
            time.sleep(0.02)
    raise AssertionError(f"agent did not write {path}")
