"""Agents that crash, hang, flood, go silent or overspend: each ends as a classified Outcome."""

from __future__ import annotations

import os
import signal
import time
from decimal import Decimal

import pytest
from runtime_harness import GRACE_S, Agents, gone_soon, run_one

from reconciler.runtime.local import LocalExecutor
from reconciler.runtime.types import LaunchRequest, Outcome

pytestmark = pytest.mark.timeout(30)


def _bare_request(agents: Agents, command: tuple[str, ...]) -> LaunchRequest:
    return LaunchRequest(
        run_id="r",
        task="demo",
        attempt=1,
        workspace=agents.root / ".mc" / "work" / "demo" / "1",
        command=command,
        env={},
        protocol="files",
        task_json={},
        timeout_s=5,
    )


def test_missing_binary_is_a_permanent_failure(executor: LocalExecutor, agents: Agents) -> None:
    req = _bare_request(agents, ("no-such-agent-binary", "--flag"))
    handle = executor.launch(req)
    assert handle.pid == 0
    outcome = run_one_after_launch(executor, req.run_id)
    assert outcome.status == "failed"
    assert outcome.error == "agent command not found: no-such-agent-binary"
    assert outcome.exit_code is None


def test_non_executable_command_is_a_permanent_failure(
    executor: LocalExecutor, agents: Agents
) -> None:
    script = agents.script("print('hi')")  # not chmod +x
    outcome = run_one(executor, _bare_request(agents, (str(script),)))
    assert outcome.status == "failed"
    assert outcome.error == f"agent command not executable (permission denied): {script}"


@pytest.mark.parametrize(
    ("code", "signal_name"),
    [
        ("import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)", "SIGSEGV"),
        ("import os\nos.abort()", "SIGABRT"),
    ],
)
def test_crash_by_signal_is_retry(
    executor: LocalExecutor, agents: Agents, code: str, signal_name: str
) -> None:
    outcome = run_one(executor, agents.request(code))
    assert outcome.status == "retry"
    assert outcome.exit_code is not None and outcome.exit_code < 0
    assert outcome.error is not None
    assert outcome.error.startswith(f"killed by signal {signal_name}")


def test_hang_times_out_as_retry(executor: LocalExecutor, agents: Agents) -> None:
    started = time.monotonic()
    outcome = run_one(executor, agents.request("import time\ntime.sleep(300)", timeout_s=0.5))
    assert outcome.status == "retry"
    assert outcome.error == "timed out after 0.5s (SIGTERM)"
    assert time.monotonic() - started < 0.5 + GRACE_S + 2


def test_agent_ignoring_sigterm_is_killed_after_the_grace(
    executor: LocalExecutor, agents: Agents
) -> None:
    code = """
import signal, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
print("ready", flush=True)
while True:
    time.sleep(0.05)
"""
    started = time.monotonic()
    outcome = run_one(executor, agents.request(code, timeout_s=0.5))
    elapsed = time.monotonic() - started
    assert outcome.status == "retry"
    assert outcome.error == "timed out after 0.5s (SIGTERM, then SIGKILL)"
    assert outcome.exit_code == -9
    assert 0.5 + GRACE_S <= elapsed < 0.5 + GRACE_S + 1.5


def test_grandchild_left_running_is_killed_with_the_group(
    executor: LocalExecutor, agents: Agents
) -> None:
    code = """
import json, os, subprocess
sleeper = subprocess.Popen(["sleep", "300"])  # same process group, holds our stdout too
json.dump({"status": "done", "output": sleeper.pid}, open(os.environ["MC_RESULT_JSON"], "w"))
"""
    started = time.monotonic()
    outcome = run_one(executor, agents.request(code))
    assert outcome.status == "done"
    sleeper = outcome.output
    assert isinstance(sleeper, int)
    assert gone_soon(sleeper)
    assert time.monotonic() - started < 5


def test_flood_of_a_gigabyte_on_stdout_is_capped_and_does_not_block(
    executor: LocalExecutor, agents: Agents
) -> None:
    code = """
import os
chunk = b"x" * (1 << 20)
for _ in range(1024):
    os.write(1, chunk)
os.write(2, b"done flooding\\n")
raise SystemExit(0)
"""
    cap = 1 << 20
    started = time.monotonic()
    outcome = run_one(executor, agents.request(code, protocol="stdout", log_cap_bytes=cap))
    assert time.monotonic() - started < 15
    assert outcome.status == "done"
    assert outcome.stdout_path is not None
    size = outcome.stdout_path.stat().st_size
    assert cap < size <= cap + 200
    tail = outcome.stdout_path.read_bytes()[cap:]
    assert b"stdout capped at 1048576 bytes" in tail
    assert b"1073741824 bytes written in total" in tail
    assert outcome.output == "x" * cap


def test_lost_heartbeat_is_abandoned(executor: LocalExecutor, agents: Agents) -> None:
    code = """
import os, time
for _ in range(3):  # beats for a while, then hangs silently
    open(os.environ["MC_HEARTBEAT"], "w").close()
    time.sleep(0.2)
time.sleep(300)
"""
    started = time.monotonic()
    req = agents.request(code, heartbeat_timeout_s=0.7, timeout_s=20)
    outcome = run_one(executor, req)
    assert outcome.status == "abandoned"
    assert outcome.error == "no heartbeat within 0.7s (SIGTERM)"
    assert 0.4 + 0.7 <= time.monotonic() - started < 5


def test_regular_heartbeats_keep_a_slow_agent_alive(
    executor: LocalExecutor, agents: Agents
) -> None:
    code = """
import json, os, time
for _ in range(8):
    os.utime(os.environ["MC_HEARTBEAT"]) if os.path.exists(os.environ["MC_HEARTBEAT"]) else \\
        open(os.environ["MC_HEARTBEAT"], "w").close()
    time.sleep(0.2)
json.dump({"status": "done"}, open(os.environ["MC_RESULT_JSON"], "w"))
"""
    outcome = run_one(executor, agents.request(code, heartbeat_timeout_s=0.6))
    assert outcome.status == "done", outcome.error


def test_running_cost_above_the_cap_stops_the_run(executor: LocalExecutor, agents: Agents) -> None:
    code = """
import json, os, time
for spent in (0.1, 0.3, 0.7, 1.2):
    with open(os.environ["MC_COST_JSON"] + ".tmp", "w") as f:
        json.dump({"cost_usd": spent}, f)
    os.replace(os.environ["MC_COST_JSON"] + ".tmp", os.environ["MC_COST_JSON"])
    time.sleep(0.3)
time.sleep(300)
"""
    req = agents.request(code, per_run_cap_usd=Decimal("1.00"))
    started = time.monotonic()
    outcome = run_one(executor, req)
    assert outcome.status == "failed"
    assert outcome.error == "per-run budget $1.00 exceeded: $1.2 reported (SIGTERM)"
    assert outcome.cost_usd == Decimal("1.2")
    assert time.monotonic() - started < 5


def test_final_cost_above_the_cap_fails_but_is_recorded(
    executor: LocalExecutor, agents: Agents
) -> None:
    code = """
import json, os
json.dump({"status": "done", "output": "ok", "cost_usd": 2.5},
          open(os.environ["MC_RESULT_JSON"], "w"))
"""
    outcome = run_one(executor, agents.request(code, per_run_cap_usd=Decimal("2")))
    assert outcome.status == "failed"
    assert outcome.error == "per-run budget $2 exceeded: $2.5 reported"
    assert outcome.cost_usd == Decimal("2.5")


def run_one_after_launch(executor: LocalExecutor, run_id: str) -> Outcome:
    outcomes = executor.poll()
    assert [o.run_id for o in outcomes] == [run_id]
    return outcomes[0]


def test_empty_command_is_a_permanent_failure(executor: LocalExecutor, agents: Agents) -> None:
    outcome = run_one(executor, _bare_request(agents, ()))
    assert (outcome.status, outcome.error) == ("failed", "agent command is empty")


def test_escaped_process_holding_stdout_does_not_hold_up_the_outcome(
    executor: LocalExecutor, agents: Agents
) -> None:
    code = """
import json, os, subprocess
escaped = subprocess.Popen(["sleep", "300"], start_new_session=True)  # leaves our group
json.dump({"status": "done", "output": escaped.pid}, open(os.environ["MC_RESULT_JSON"], "w"))
"""
    started = time.monotonic()
    outcome = run_one(executor, agents.request(code))
    try:
        assert outcome.status == "done"
        assert time.monotonic() - started < GRACE_S + 2  # stopped waiting for the pipe
    finally:
        os.kill(outcome.output, signal.SIGKILL)
