"""Process identity and crash-recovery killing against real process groups."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from reconciler.runtime.procs import (
    is_same_process_alive,
    kill_process_group,
    process_start_time,
    read_proc_stat,
)

pytestmark = pytest.mark.timeout(20)

# A run leader as a dead reconciler would have left it: its own session, with a child.
LEADER = """
import subprocess, sys, time, signal
if "--stubborn" in sys.argv:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
kid = subprocess.Popen(["sleep", "300"])
print(kid.pid, flush=True)
if "--exit" in sys.argv:
    sys.exit(0)
time.sleep(300)
"""


@pytest.fixture
def spawned() -> Iterator[list[subprocess.Popen[str]]]:
    procs: list[subprocess.Popen[str]] = []
    yield procs
    for proc in procs:
        if proc.poll() is None:
            os.killpg(proc.pid, 9)
        proc.wait()


def start_leader(spawned: list[subprocess.Popen[str]], *flags: str) -> tuple[int, int, int]:
    """(leader pid, leader start time, grandchild pid)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", LEADER, *flags],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    spawned.append(proc)
    assert proc.stdout is not None
    kid = int(proc.stdout.readline())
    start = process_start_time(proc.pid)
    assert start is not None
    return proc.pid, start, kid


def alive(pid: int) -> bool:
    start = process_start_time(pid)
    return start is not None and is_same_process_alive(pid, start)


def test_start_time_identifies_a_live_process() -> None:
    start = process_start_time(os.getpid())
    assert isinstance(start, int) and start > 0
    assert process_start_time(os.getpid()) == start  # stable
    assert is_same_process_alive(os.getpid(), start)
    assert not is_same_process_alive(os.getpid(), start + 1)


def test_gone_and_invalid_pids_have_no_start_time() -> None:
    proc = subprocess.Popen(["true"])
    proc.wait()
    assert process_start_time(proc.pid) is None or not alive(proc.pid)
    assert process_start_time(0) is None
    assert process_start_time(-5) is None
    assert not is_same_process_alive(0, 0)


def test_a_zombie_is_not_alive() -> None:
    proc = subprocess.Popen(["true"])
    start = process_start_time(proc.pid)
    deadline = time.monotonic() + 5
    while (stat := read_proc_stat(proc.pid)) is not None and stat.state != "Z":
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert start is not None
    assert not is_same_process_alive(proc.pid, start)  # exited, not yet reaped
    proc.wait()


def test_kill_process_group_kills_leader_and_children(
    spawned: list[subprocess.Popen[str]],
) -> None:
    pid, start, kid = start_leader(spawned)
    assert kill_process_group(pid, start, grace_s=2.0)
    spawned[0].wait(timeout=5)
    assert spawned[0].returncode == -15
    assert not alive(kid)


def test_kill_process_group_escalates_to_sigkill_after_the_grace(
    spawned: list[subprocess.Popen[str]],
) -> None:
    pid, start, kid = start_leader(spawned, "--stubborn")
    started = time.monotonic()
    assert kill_process_group(pid, start, grace_s=0.4)
    assert time.monotonic() - started >= 0.4
    spawned[0].wait(timeout=5)
    assert spawned[0].returncode == -9
    assert not alive(kid)


def test_kill_process_group_never_kills_a_process_with_another_start_time(
    spawned: list[subprocess.Popen[str]],
) -> None:
    pid, start, kid = start_leader(spawned)
    assert not kill_process_group(pid, start - 1, grace_s=0.2)  # as if the pid was reused
    assert alive(pid)
    assert alive(kid)


def test_kill_process_group_finds_stragglers_of_a_dead_leader(
    spawned: list[subprocess.Popen[str]],
) -> None:
    pid, start, kid = start_leader(spawned, "--exit")
    spawned[0].wait(timeout=5)  # the leader is gone for good
    assert alive(kid)
    assert kill_process_group(pid, start, grace_s=1.0)
    assert not alive(kid)


def test_kill_process_group_of_nothing_is_a_no_op(spawned: list[subprocess.Popen[str]]) -> None:
    pid, start, kid = start_leader(spawned)
    spawned[0].kill()
    os.killpg(pid, 9)
    spawned[0].wait()
    deadline = time.monotonic() + 5
    while alive(kid):
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert not kill_process_group(pid, start, grace_s=0.2)
    assert not kill_process_group(0, 0, grace_s=0.2)


def test_kill_process_group_via_a_member_kills_the_whole_group(
    spawned: list[subprocess.Popen[str]],
) -> None:
    pid, _, kid = start_leader(spawned)  # recovery may find any process of the run first
    kid_start = process_start_time(kid)
    assert kid_start is not None
    assert kill_process_group(kid, kid_start, grace_s=2.0)
    spawned[0].wait(timeout=5)
    assert spawned[0].returncode == -15
    assert not alive(kid)
    assert not alive(pid)
