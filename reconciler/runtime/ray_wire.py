"""What travels between the control plane and a Ray worker for one run; plain frozen values.

Control plane -> worker: a `WorkerJob` (the LaunchRequest without its secrets, and which
tree and drops it reads), `RunSecrets` (the resolved env and the values to redact: a small
argument of its own, so it rides inline in the task spec and never lands in the object store,
which may spill to disk), and the tree and drop bytes (object-store refs, shared by the runs
that read the same commit or drop). Worker -> control plane: a `WorkerReport` (how the process
ended, its capped files, its bounded drops). Nothing here imports ray or does I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from .live_run import Stop
from .types import LaunchRequest, OutcomeStatus

# Files of the agent protocol the worker sends back (each capped, see ray_worker.py).
RETURNED_FILES = ("result.json", "cost.json", "stdout.log", "stderr.log")
COST_CAP_BYTES = 64 * 1024  # cost.json is one number and a few counts
LOG_NOTE_BYTES = 4096  # room for CappedLog's truncation notes past log_cap_bytes


@dataclass(frozen=True, slots=True)
class RunSecrets:
    """The run's resolved environment and the values scrubbed from its logs: in memory only."""

    env: Mapping[str, str]
    secret_values: tuple[str, ...] | None


@dataclass(frozen=True, slots=True)
class WorkerJob:
    """One attempt as the worker runs it. `req` holds the control plane's paths and no
    secrets; `tree_commit` names the tree shipped with it (None: no tree), `drops` the sha256
    of each upstream drop shipped (in order), `cp_drops_dir` the control plane's drop store
    (its paths in task.json are rewritten to the worker's copies)."""

    req: LaunchRequest
    namespace: str
    tree_commit: str | None
    drops: tuple[str, ...]
    cp_drops_dir: str
    grace_s: float = 2.0
    beat_every_s: float = 5.0


@dataclass(frozen=True, slots=True)
class WorkerReport:
    """How a run ended on a worker. `launch_failed` is set when no agent process started;
    otherwise the exit (Popen convention, None: survived SIGKILL), the executor's stop, the
    stdout counts, the returned files by name and the out/ files as (relative path, bytes),
    or the drop store's refusal (status, reason) when the worker already refused them."""

    run_id: str
    node_id: str
    started_at: float
    ended_at: float
    launch_failed: tuple[OutcomeStatus, str] | None = None
    returncode: int | None = None
    stop: Stop | None = None
    sigkilled: bool = False
    stdout_kept: int = 0
    stdout_truncated: bool = False
    files: Mapping[str, bytes] = field(default_factory=dict)
    drops: tuple[tuple[str, bytes], ...] = ()
    drops_refused: tuple[OutcomeStatus, str] | None = None
