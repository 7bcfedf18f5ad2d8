"""Real sandboxes through the LocalExecutor: what an agent sees, what it cannot reach, how its
processes end, and how launch problems read. Agents are Python scripts run by this
interpreter, whose installation the sandbox shows read-only."""

from __future__ import annotations

import os
import socket
import tempfile
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from helpers.agents import interpreter_mounts
from helpers.sandboxed import run_processes
from runtime_harness import Agents, run_one

from reconciler.runtime.local import LocalExecutor
from reconciler.runtime.sandbox import INSTALL_HINT, Limits, Mount, Sandbox
from reconciler.runtime.types import LaunchRequest, Outcome

pytestmark = pytest.mark.timeout(60)

MARKER = "mc-sandbox-marker-3b9d"  # in mc's environment, never given to an agent


def sandbox(agents: Agents, *mounts: Mount, **fields: Any) -> Sandbox:
    """Shows this interpreter and the agent scripts (read-only), plus `mounts`."""
    shown = [Mount(Path(m["path"])) for m in interpreter_mounts()]
    return Sandbox(mounts=(*shown, Mount(agents.root / "agents"), *mounts), **fields)


def confined(agents: Agents, code: str, *mounts: Mount, **fields: Any) -> LaunchRequest:
    timeout = fields.pop("timeout_s", 20.0)
    req = agents.request(code, timeout_s=timeout)
    return replace(req, sandbox=sandbox(agents, *mounts, **fields))


@pytest.fixture
def marked_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("MC_SECRET_MARKER", MARKER)
    yield


def output(outcome: Outcome) -> Any:
    assert outcome.status == "done", outcome.error
    return outcome.output


SEES = """
import json, os
from pathlib import Path

def probe(path):
    try:
        return sorted(os.listdir(path))[:50]
    except OSError as exc:
        return type(exc).__name__

def can_write(path):
    try:
        Path(path).write_text("x")
        return "written"
    except OSError as exc:
        return type(exc).__name__

out = {
    "proc": [p for p in os.listdir("/proc") if p.isdigit()],
    "init_env": Path("/proc/1/environ").read_bytes().decode(errors="replace"),
    "ppid": os.getppid(),
    "root_home": probe("/root"),
    "home": probe(os.environ["HOME"]),
    "home_write": can_write(Path(os.environ["HOME"]) / "x"),
    "host_tmp": os.path.exists(os.environ["HOSTTMP"]),
    "hidden": probe(os.environ["HIDDEN"]),
    "ro_write": can_write(Path(os.environ["RO"]) / "x"),
    "rw_write": can_write(Path(os.environ["RW"]) / "x"),
    "usr_write": can_write("/usr/x"),
    "ws_write": can_write("scratch.txt"),
    "hostname": os.uname().nodename,
}
json.dump({"status": "done", "output": out}, open(os.environ["MC_RESULT_JSON"], "w"))
"""


def test_an_agent_sees_only_its_sandbox(
    executor: LocalExecutor, agents: Agents, tmp_path: Path, marked_env: None
) -> None:
    hidden, ro_dir, rw_dir = tmp_path / "hidden", tmp_path / "ro", tmp_path / "rw"
    for d in (hidden, ro_dir, rw_dir):
        d.mkdir()
    (hidden / "secret.txt").write_text("no")
    req = confined(agents, SEES, Mount(ro_dir), Mount(rw_dir, writable=True))
    with tempfile.NamedTemporaryFile(dir="/tmp", prefix="mc-host-tmp-") as host_tmp:
        env = {
            "HIDDEN": str(hidden),
            "RO": str(ro_dir),
            "RW": str(rw_dir),
            "HOSTTMP": host_tmp.name,
        }
        seen = output(run_one(executor, replace(req, env=env)))
    assert len(seen["proc"]) <= 3  # bwrap's init, the agent, maybe its listing: not the host
    assert seen["ppid"] == 1
    assert MARKER not in seen["init_env"] and "MC_RUN_ID=" in seen["init_env"]
    # $HOME is private and writable; only the way to a mount under it shows (this interpreter)
    shown = {
        Path(m["path"]).parts[2] for m in interpreter_mounts() if m["path"].startswith("/root/")
    }
    assert seen["root_home"] == "FileNotFoundError" or set(seen["root_home"]) <= shown
    home_shown = {
        Path(m["path"]).relative_to(os.environ["HOME"]).parts[0]
        for m in interpreter_mounts()
        if Path(m["path"]).is_relative_to(os.environ["HOME"])
    }
    assert set(seen["home"]) <= home_shown and seen["home_write"] == "written"
    assert seen["host_tmp"] is False  # the host's /tmp is not the agent's
    assert seen["hidden"] == "FileNotFoundError"
    assert seen["ro_write"] == "OSError" or seen["ro_write"] == "PermissionError"
    assert seen["rw_write"] == "written" and (rw_dir / "x").read_text() == "x"
    assert seen["usr_write"] in ("OSError", "PermissionError")
    assert seen["ws_write"] == "written"
    assert seen["hostname"] == "mc-sandbox"
    assert not (Path("/usr/x")).exists()


CONNECT = """
import json, os, socket
try:
    socket.create_connection(("127.0.0.1", int(os.environ["PORT"])), timeout=2).close()
    said = "connected"
except OSError as exc:
    said = type(exc).__name__
json.dump({"status": "done", "output": said}, open(os.environ["MC_RESULT_JSON"], "w"))
"""


@pytest.mark.parametrize(
    ("network", "said"), [(False, "ConnectionRefusedError"), (True, "connected")]
)
def test_the_network_is_off_unless_declared(
    executor: LocalExecutor, agents: Agents, network: bool, said: str
) -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        req = replace(confined(agents, CONNECT, network=network), env={"PORT": str(port)})
        assert output(run_one(executor, req)) == said


DAEMON = """
import json, os, time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        os.closerange(0, 3)
        time.sleep(60)
    os._exit(0)
time.sleep(0.2)
json.dump({"status": "done", "output": "left a daemon"}, open(os.environ["MC_RESULT_JSON"], "w"))
"""


def test_a_daemon_the_agent_leaves_dies_with_its_run(
    executor: LocalExecutor, agents: Agents
) -> None:
    req = confined(agents, DAEMON)
    outcome = run_one(executor, req)
    assert output(outcome) == "left a daemon"
    give_up = time.monotonic() + 3
    while run_processes(req.run_id):
        assert time.monotonic() < give_up, "a daemon outlived its run by 3 s"
        time.sleep(0.05)


STUBBORN = """
import os, signal, subprocess, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
subprocess.Popen(["sleep", "60"], start_new_session=True)
print("ready", flush=True)
time.sleep(60)
"""

GRACEFUL = """
import json, os, signal, sys, time
def stop(*_):
    json.dump({"status": "retry", "error": "stopped"}, open(os.environ["MC_RESULT_JSON"], "w"))
    sys.exit(0)
signal.signal(signal.SIGTERM, stop)
time.sleep(60)
"""


def test_a_timeout_signals_the_agent_then_kills_the_whole_sandbox(
    executor: LocalExecutor, agents: Agents
) -> None:
    req = confined(agents, STUBBORN, timeout_s=0.5)
    outcome = run_one(executor, req)
    assert outcome.status == "retry"
    assert outcome.error == "timed out after 0.5s (SIGTERM, then SIGKILL)"
    assert outcome.exit_code == -9
    give_up = time.monotonic() + 3
    while run_processes(req.run_id):
        assert time.monotonic() < give_up, "something of the sandbox outlived its kill"
        time.sleep(0.05)


def test_sigterm_reaches_the_agent_inside_the_sandbox(
    executor: LocalExecutor, agents: Agents
) -> None:
    outcome = run_one(executor, confined(agents, GRACEFUL, timeout_s=0.5))
    assert outcome.error == "timed out after 0.5s (SIGTERM)"  # it handled SIGTERM and exited
    assert outcome.exit_code == 0


def test_a_crash_by_signal_reads_as_unconfined(executor: LocalExecutor, agents: Agents) -> None:
    code = "import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)"
    outcome = run_one(executor, confined(agents, code))
    assert (outcome.status, outcome.exit_code) == ("retry", -11)
    assert outcome.error is not None and outcome.error.startswith("killed by signal SIGSEGV")


def test_limits_bind_inside_the_sandbox(executor: LocalExecutor, agents: Agents) -> None:
    code = """
import json, os, resource
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
try:
    open("big.bin", "wb").write(b"x" * 200_000)
    wrote = "all"
except OSError as exc:
    wrote = type(exc).__name__
result = {"status": "done", "output": [soft, hard, wrote]}
json.dump(result, open(os.environ["MC_RESULT_JSON"], "w"))
"""
    limits = Limits(open_files=64, file_size_bytes=100_000)
    outcome = run_one(executor, confined(agents, code, limits=limits))
    # Python ignores SIGXFSZ, so the write past the cap fails with EFBIG.
    assert output(outcome) == [64, 64, "OSError"]


# --- launch problems ------------------------------------------------------------------------


def test_a_missing_program_starts_nothing_and_fails_permanently(
    executor: LocalExecutor, agents: Agents
) -> None:
    req = replace(confined(agents, ""), command=("no-such-agent-binary", "--flag"))
    handle = executor.launch(req)
    assert handle.pid == 0
    outcome = run_one_launched(executor, req.run_id)
    assert (outcome.status, outcome.exit_code) == ("failed", None)
    assert outcome.error == "agent command not found: no-such-agent-binary"


def test_a_program_the_sandbox_does_not_show_fails_permanently_and_says_why(
    executor: LocalExecutor, agents: Agents, tmp_path: Path
) -> None:
    program = tmp_path / "tools" / "agent.sh"
    program.parent.mkdir()
    program.write_text("#!/bin/sh\nexit 0\n")
    program.chmod(0o755)
    outcome = run_one(executor, replace(confined(agents, ""), command=(str(program),)))
    assert outcome.status == "failed"
    assert outcome.error == (
        f"agent command not found: {program} "
        "(it exists on the host, not in the sandbox: declare it in mounts)"
    )


def test_a_missing_bwrap_fails_permanently_naming_the_fix(
    executor: LocalExecutor, agents: Agents, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    req = confined(agents, "")
    executor.launch(req)
    outcome = run_one_launched(executor, req.run_id)
    assert (outcome.status, outcome.error) == ("failed", INSTALL_HINT)


def test_a_refused_mount_fails_permanently_naming_the_path(
    executor: LocalExecutor, agents: Agents, tmp_path: Path
) -> None:
    repo = tmp_path / "mission"
    (repo / ".git").mkdir(parents=True)
    req = confined(agents, "", Mount(repo / ".git", writable=True), protected=(repo,))
    executor.launch(req)
    outcome = run_one_launched(executor, req.run_id)
    assert outcome.status == "failed"
    assert outcome.error is not None
    assert outcome.error.startswith(f"mount {repo / '.git'} overlaps the mission repo {repo}")


def run_one_launched(ex: LocalExecutor, run_id: str, within: float = 20.0) -> Outcome:
    give_up = time.monotonic() + within
    while time.monotonic() < give_up:
        for outcome in ex.poll():
            if outcome.run_id == run_id:
                return outcome
        ex.wait(0.5)
    raise AssertionError(f"no outcome for {run_id}")


def test_the_sandbox_adds_little_to_a_run(executor: LocalExecutor, agents: Agents) -> None:
    """A loose guard (the benchmark measures it): a no-op run, sandboxed, well under 1 s."""
    started = time.monotonic()
    outcome = run_one(executor, confined(agents, DONE))
    assert outcome.status == "done"
    assert time.monotonic() - started < 5


DONE = """
import json, os
json.dump({"status": "done"}, open(os.environ["MC_RESULT_JSON"], "w"))
"""
