"""The bookkeeping of one live local run, shared by spawn, supervise, collect and LocalExecutor."""

from __future__ import annotations

import math
import subprocess
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from .logs import CappedLog
from .types import LaunchRequest, OutcomeStatus, RunHandle
from .workspace import WorkspacePaths

StopKind = Literal["timeout", "heartbeat", "budget", "cancel"]


@dataclass(frozen=True, slots=True)
class Stop:
    """Why the executor is stopping a run, and what that makes the outcome."""

    kind: StopKind
    status: OutcomeStatus
    message: str


@dataclass(eq=False)
class LiveRun:
    """Mutable bookkeeping of one live run; guarded by LocalExecutor's lock."""

    req: LaunchRequest
    paths: WorkspacePaths
    proc: subprocess.Popen[bytes]
    handle: RunHandle
    stdout: CappedLog
    stderr: CappedLog
    stream_fds: tuple[int, int]
    started_at: float  # wall clock
    deadline: float  # monotonic
    open_streams: int = 2
    leader_exited: bool = False  # set by the pump when the pidfd fires
    returncode: int | None = None  # set once reaped
    ended_at: float = 0.0
    drain_deadline: float = math.inf
    drain_forced: bool = False
    stop: Stop | None = None
    kill_at: float = math.inf  # monotonic time of the SIGKILL escalation
    sigkilled: bool = False
    cost: Decimal = Decimal(0)
    cost_seen: tuple[int, int, int] | None = None  # (mtime_ns, size, ino) of cost.json last read

    @property
    def finishable(self) -> bool:
        return self.returncode is not None and self.open_streams == 0
