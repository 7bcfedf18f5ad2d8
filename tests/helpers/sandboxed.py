"""Host pids of sandboxed agents: an agent sees its own PID namespace, so the pid it writes
means nothing on the host; a marker records it with the run id and these find the host pid."""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path


def _environ_has(pid: int, entry: bytes) -> bool:
    try:
        return entry in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return False


def _status_field(pid: int, name: str) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return []
    for line in text.splitlines():
        if line.startswith(f"{name}:"):
            return [int(word) for word in line.split()[1:]]
    return []


def run_processes(run_id: str) -> list[int]:
    """Host pids of every live process of the run (bwrap included: it has the agent's env)."""
    entry = f"MC_RUN_ID={run_id}".encode()
    pids = [int(p) for p in os.listdir("/proc") if p.isdigit()]
    return [pid for pid in pids if _environ_has(pid, entry)]


def run_leader(run_id: str) -> int | None:
    """The process mc started for the run (bwrap, or the agent itself when unconfined)."""
    pids = run_processes(run_id)
    for pid in pids:
        if (_status_field(pid, "PPid") or [0])[0] not in pids:
            return pid
    return None


def host_pid(inner_pid: int, run_id: str) -> int | None:
    """The host pid of the run's process that sees itself as `inner_pid`."""
    for pid in run_processes(run_id):
        if (_status_field(pid, "NSpid") or [0])[-1] == inner_pid:
            return pid
    return None


def read_marker(marker: Path) -> tuple[int, str]:
    """(pid as the agent saw it, run id) from a marker an agent wrote with `mark`."""
    pid, run_id = marker.read_text().split()
    return int(pid), run_id


def marked_leader(marker: Path) -> int:
    """Host pid of the leader of the run that wrote `marker` (while it runs)."""
    _pid, run_id = read_marker(marker)
    leader = run_leader(run_id)
    assert leader is not None, f"no live process of run {run_id}"
    return leader


def marked_pid(marker: Path) -> int:
    """Host pid of the process that wrote (or was named in) `marker` (while it runs)."""
    pid, run_id = read_marker(marker)
    found = host_pid(pid, run_id)
    assert found is not None, f"no live process {pid} of run {run_id}"
    return found


def kill_marked_run(marker: Path) -> None:
    """Clean-up for a test that failed half-way: SIGKILL every live process of the run that
    wrote `marker` (they all carry its unique MC_RUN_ID)."""
    if not marker.exists():
        return
    _pid, run_id = read_marker(marker)
    for pid in run_processes(run_id):
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
