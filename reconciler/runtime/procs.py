"""Process identity and group killing via /proc; used by LocalExecutor and by crash recovery.

A pid alone does not name a process: after it exits the number is reused. A pid together with
its start time (field 22 of /proc/<pid>/stat) does, so recovery can kill the process groups a
dead reconciler left behind without ever signalling an unrelated process.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

_PROC = Path("/proc")
_SIGKILL_SETTLE_S = 1.0  # SIGKILL cannot be ignored, but dying still takes a moment


@dataclass(frozen=True, slots=True)
class ProcStat:
    """The few fields of /proc/<pid>/stat the runtime needs."""

    pid: int
    state: str  # R, S, D, Z (zombie), X (dead), ...
    pgrp: int
    session: int
    start_time: int


def read_proc_stat(pid: int) -> ProcStat | None:
    """Parse /proc/<pid>/stat; None if there is no such process (or it cannot be read)."""
    if pid <= 0:
        return None
    try:
        raw = (_PROC / str(pid) / "stat").read_bytes()
    except OSError:
        return None
    # comm (field 2) is in parentheses and may itself hold spaces or ')': split after the last.
    fields = raw[raw.rfind(b")") + 2 :].split()
    try:
        return ProcStat(
            pid=pid,
            state=fields[0].decode(),
            pgrp=int(fields[2]),
            session=int(fields[3]),
            start_time=int(fields[19]),
        )
    except (IndexError, ValueError):
        return None


def process_start_time(pid: int) -> int | None:
    """Start time of pid in clock ticks since boot (stat field 22), None if it does not exist."""
    stat = read_proc_stat(pid)
    return stat.start_time if stat else None


def _is_live(stat: ProcStat | None) -> bool:
    return stat is not None and stat.state not in ("Z", "X")


def is_same_process_alive(pid: int, start_time: int) -> bool:
    """True if pid exists, is not a zombie, and is the process that started at start_time."""
    stat = read_proc_stat(pid)
    return _is_live(stat) and stat is not None and stat.start_time == start_time


def _group_members(pgid: int, not_before: int) -> list[ProcStat]:
    """Live processes of group pgid (and session pgid) that started no earlier than not_before."""
    members = []
    for entry in _PROC.iterdir():
        if not entry.name.isdigit():
            continue
        stat = read_proc_stat(int(entry.name))
        if (
            _is_live(stat)
            and stat is not None
            and stat.pgrp == pgid
            and stat.session == pgid
            and stat.start_time >= not_before
        ):
            members.append(stat)
    return members


def _signal_group(pid: int, start_time: int, sig: signal.Signals) -> None:
    """Signal the group while its leader (maybe a zombie) still holds the pgid, else members."""
    leader = read_proc_stat(pid)
    if leader is not None and leader.start_time == start_time:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, sig)
        return
    for member in _group_members(pid, start_time):
        if is_same_process_alive(member.pid, member.start_time):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(member.pid, sig)


def kill_process_group(pid: int, start_time: int, grace_s: float) -> bool:
    """Kill the group a run leader started (SIGTERM, SIGKILL after grace_s); True if any found.

    For crash recovery, where the leader is not our child. While the leader (even as a zombie)
    has the recorded start time it holds the group id, so the whole group is signalled. If the
    pid now names another process it was reused: nothing is touched. If the leader is gone,
    surviving members (same group and session, started after the leader) are signalled one by
    one, each re-checked just before. Blocks for at most about grace_s + 1s.
    """
    leader = read_proc_stat(pid)
    if pid <= 0 or (leader is not None and leader.start_time != start_time):
        return False
    if not _group_members(pid, start_time):
        return False
    _signal_group(pid, start_time, signal.SIGTERM)
    if not _wait_group_gone(pid, start_time, grace_s):
        _signal_group(pid, start_time, signal.SIGKILL)
        _wait_group_gone(pid, start_time, _SIGKILL_SETTLE_S)
    return True


def _wait_group_gone(pid: int, start_time: int, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while _group_members(pid, start_time):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)
    return True
