"""Value types of the executor port: what the applier hands to an executor and gets back.

The applier builds a `LaunchRequest` per attempt, an `Executor` turns it into a process and,
later, into an `Outcome`. Everything here is a frozen value; nothing does I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import KW_ONLY, dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal, Protocol

from specs.errors import MCError

from .sandbox import Sandbox

AgentProtocol = Literal["files", "stdout", "claude-code"]
OutcomeStatus = Literal["done", "retry", "failed", "blocked", "abandoned", "canceled"]


class ExecutorError(MCError):
    """The executor was used wrongly (duplicate run id, launch after shutdown): a caller bug."""


@dataclass(frozen=True, slots=True)
class DropCaps:
    """Bounds on one run's content drops, by apparent size (st_size: a sparse file counts in
    full); a run over any of them fails permanently. From the mission's `drops:`."""

    max_file_bytes: int = 25 * 1024 * 1024
    max_run_bytes: int = 100 * 1024 * 1024
    max_files: int = 1000


@dataclass(frozen=True, slots=True)
class RayPlacement:
    """Where a run goes when its executor is `ray`: the cluster, the namespace (one run ledger
    per namespace), and the Ray resources it asks for (`CPU`, `GPU`, `memory` in bytes, custom
    names such as `browser`); Ray starts it only on a node that has them free."""

    address: str  # "auto", "HOST:PORT" (the head's GCS) or "ray://HOST:PORT" (Ray Client)
    namespace: str
    resources: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class LaunchRequest:
    """One attempt of one task, with everything resolved: the executor decides nothing."""

    run_id: str  # unique per attempt, passed to the agent as MC_RUN_ID
    task: str
    attempt: int
    workspace: Path  # .mc/work/<task>/<attempt>/ ; the executor creates it
    command: tuple[str, ...]  # argv, run with cwd=workspace
    env: Mapping[str, str]  # extra env, secrets resolved: never written to any file
    protocol: AgentProtocol
    task_json: Mapping[str, Any]  # written to workspace/task.json (must hold no secrets)
    timeout_s: float
    heartbeat_timeout_s: float | None = None
    per_run_cap_usd: Decimal | None = None  # what the run may spend: stopped/failed past it
    # How errors name that limit ("per-run budget $1" when None) and what a run over it
    # becomes: failed (its own cap) or retry (the day's budget ran out while it ran).
    cap_label: str | None = None
    cap_status: OutcomeStatus = "failed"
    log_cap_bytes: int = 10 * 1024 * 1024
    result_cap_bytes: int = 10 * 1024 * 1024
    # Values redacted from stdout.log/stderr.log. None: every `env` value of 8+ characters.
    secret_values: tuple[str, ...] | None = None
    # How the run is confined (bubblewrap, DESIGN §9); None runs it unconfined (`sandbox: none`).
    sandbox: Sandbox | None = None
    drop_limits: DropCaps = DropCaps()  # checked when out/ is copied into .mc/drops
    placement: RayPlacement | None = None  # None: this machine (the local executor)


@dataclass(frozen=True, slots=True)
class Drop:
    """A file the agent left under out/ (a content drop)."""

    path: str  # relative to out/, '/'-separated
    sha256: str
    size: int
    media_type: str  # via mimetypes, default application/octet-stream
    local_path: Path  # where it is now (in the workspace)


@dataclass(frozen=True, slots=True)
class Outcome:
    """How one run ended, classified for the lifecycle: temporary vs permanent vs not-a-failure.

    done: success. retry: temporary failure. failed: permanent failure. blocked: the agent
    needs a person. abandoned: heartbeat lost (not an attempt failure). canceled: we stopped it.
    """

    run_id: str
    status: OutcomeStatus
    error: str | None  # one line for a human; None on success
    exit_code: int | None  # negative: killed by that signal (Popen convention); None: never ran
    output: Any = None
    outputs: Mapping[str, Any] = field(default_factory=dict)
    cost_usd: Decimal = Decimal(0)
    tokens: int = 0
    memory: Mapping[str, Any] = field(default_factory=dict)
    drops: tuple[Drop, ...] = ()
    stdout_path: Path | None = None
    stderr_path: Path | None = None
    _: KW_ONLY
    started_at: float  # time.time()
    ended_at: float


@dataclass(frozen=True, slots=True)
class RunHandle:
    """Enough to find (and, after a reconciler crash, kill) the process of a run.

    pid 0 means no process was started (e.g. the binary was missing); poll() reports why.
    """

    run_id: str
    pid: int
    start_time: int  # /proc/<pid>/stat field 22 (clock ticks): identifies it across pid reuse


class Executor(Protocol):
    """Starts agent processes and reports how they ended; shared by the local and ray backends."""

    def launch(self, req: LaunchRequest) -> RunHandle:
        """Start the run and return at once; agent problems become Outcomes, never raises."""
        ...

    def poll(self) -> list[Outcome]:
        """Outcomes finished since the last call; enforces timeouts, heartbeats and cost caps."""
        ...

    def wait(self, timeout: float) -> None:
        """Block until a run may have finished, a deadline is due, or timeout elapses."""
        ...

    def running(self) -> list[str]:
        """Run ids whose outcome has not been reported by poll() yet."""
        ...

    def wake(self) -> None:
        """Make a pending wait() return at once (something else needs the loop)."""
        ...

    def cancel(self, run_id: str, reason: str) -> None:
        """Stop the run (SIGTERM, then SIGKILL after the grace); its outcome is 'canceled'."""
        ...

    def shutdown(self, grace_s: float = 2.0) -> None:
        """Cancel everything and reap all children; outcomes stay available to poll()."""
        ...
