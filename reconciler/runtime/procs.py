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
    ppid: int
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
            ppid=int(fields[1]),
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


def sandbox_init(bwrap_pid: int) -> int | None:
    """The init bwrap forked into the run's new PID namespace (the outer bwrap's one child,
    leader of its own process group), or None once it is gone or not started yet."""
    try:
        children = (_PROC / str(bwrap_pid) / "task" / str(bwrap_pid) / "children").read_text()
    except OSError:
        return None
    for word in children.split():
        stat = read_proc_stat(int(word))
        if _is_live(stat) and stat is not None and stat.ppid == bwrap_pid:
            return stat.pid
    return None


def _is_live(stat: ProcStat | None) -> bool:
    return stat is not None and stat.state not in ("Z", "X")


def is_same_process_alive(pid: int, start_time: int) -> bool:
    """True if pid exists, is not a zombie, and is the process that started at start_time."""
    stat = read_proc_stat(pid)
    return _is_live(stat) and stat is not None and stat.start_time == start_time


@dataclass(frozen=True, slots=True)
class _Group:
    """A process group identified with certainty, and which of its members are ours."""

    pgid: int
    session: int
    not_before: int  # members started earlier are not ours (0: every member is)
    by_anchor: bool  # a live member proved the pgid: killpg is safe while members remain


def _identify_group(pid: int, start_time: int) -> _Group | None:
    """The group of (pid, start_time): via the process itself, or, if it is gone, by its pid.

    A process (even a zombie) keeps its group id allocated, so while it exists its pgid names
    its group. Once it is gone we can only assume it led group `pid` in session `pid` (runs are
    started with setsid) and trust members that started after it.
    """
    if pid <= 0:
        return None
    anchor = read_proc_stat(pid)
    if anchor is None:
        return _Group(pgid=pid, session=pid, not_before=start_time, by_anchor=False)
    if anchor.start_time != start_time:
        return None  # the pid was reused by an unrelated process
    return _Group(pgid=anchor.pgrp, session=anchor.session, not_before=0, by_anchor=True)


def _live_members(group: _Group) -> list[ProcStat]:
    members = []
    for entry in _PROC.iterdir():
        if not entry.name.isdigit():
            continue
        stat = read_proc_stat(int(entry.name))
        if (
            _is_live(stat)
            and stat is not None
            and stat.pgrp == group.pgid
            and stat.session == group.session
            and stat.start_time >= group.not_before
        ):
            members.append(stat)
    return members


def _signal_group(group: _Group, sig: signal.Signals) -> None:
    if group.by_anchor:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(group.pgid, sig)
        return
    for member in _live_members(group):
        if is_same_process_alive(member.pid, member.start_time):  # re-check just before
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(member.pid, sig)


def _wait_group_gone(group: _Group, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while _live_members(group):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)
    return True


def kill_process_group(pid: int, start_time: int, grace_s: float) -> bool:
    """Kill the process group of (pid, start_time): SIGTERM, SIGKILL after grace_s.

    For crash recovery, where the runs are not our children. True if live members were found.
    If pid now names another process (pid reuse), nothing is touched. pid may be the run's
    leader or any process of the run. If the process is gone, the surviving members of group
    `pid` in session `pid` that started after it are signalled one by one, each re-checked.
    Blocks for at most about grace_s + 1s.
    """
    group = _identify_group(pid, start_time)
    if group is None or not _live_members(group):
        return False
    _signal_group(group, signal.SIGTERM)
    if not _wait_group_gone(group, grace_s):
        _signal_group(group, signal.SIGKILL)
        _wait_group_gone(group, _SIGKILL_SETTLE_S)
    return True


def kill_by_run_id(run_id: str) -> bool:
    """A run recorded LAUNCHING has no pid yet: find its process by the MC_RUN_ID it was given.
    True if live processes of the run were found (and killed)."""
    needle = f"MC_RUN_ID={run_id}".encode()
    found = False
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as fh:
                if needle not in fh.read().split(b"\0"):
                    continue
        except OSError:
            continue
        start = process_start_time(int(entry))
        if start is not None:
            found = kill_process_group(int(entry), start, grace_s=2.0) or found
    return found
