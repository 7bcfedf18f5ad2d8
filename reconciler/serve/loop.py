"""The `mc serve` loop: reconcile on commits and timers; started by cli/serve.py and cli/bot.py.

The loop owns the state file (DuckDB admits one writer); the dashboard reads it through
cursors of the same database. A commit wakes the loop within milliseconds (watchfiles on
.git); retries, deadlines and budget days wake it through the engine's timers; a periodic
full resync catches drift. A bad commit never stops the loop: the last good desired state
keeps running and the error is recorded. Nor does an exception from one reconcile, one engine
tick or one bot request: it is recorded as a `reconcile.error` event and the loop carries on.
"""

from __future__ import annotations

import json
import logging
import os
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, Protocol, TypeVar

from reconciler.commands.context import MissionContext
from reconciler.commands.holder import HolderSocket
from reconciler.commands.read_views import Readers, answer
from reconciler.engine.engine import Engine
from reconciler.engine.launch import Paths
from reconciler.plan.pipeline import UntrustedHead, plan_commit
from reconciler.runtime.executors import RoutingExecutor
from reconciler.runtime.local import LocalExecutor
from reconciler.serve.log_lines import Record, reconcile_record, records_of
from reconciler.serve.requests import (
    ACTOR,
    RecordApproval,
    Request,
    RequestQueue,
    SetMode,
    carry_out,
)
from specs.errors import MCError
from state.dashboard import DashboardReader
from state.db import Database
from state.records import NewEvent
from state.store import State, StateReader

GIT_TRIGGERS = ("HEAD", "packed-refs")
ERROR_PAUSE_S = 1.0  # after a failed tick: a fault that repeats must not spin the loop
Stage = Literal["reconcile", "tick", "request", "log"]
T = TypeVar("T")
log = logging.getLogger(__name__)


class ServeMetrics(Protocol):
    def observe_reconcile(self, seconds: float) -> None: ...
    def observe_commit_to_dispatch(self, seconds: float) -> None: ...
    def count_reconcile_error(self, kind: str = "error") -> None: ...


@dataclass
class ServeStatus:
    started_at: datetime
    last_commit: str | None = None
    last_reconciled_at: datetime | None = None
    last_error: str | None = None
    last_error_commit: str | None = None
    reconciles: int = 0
    override: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            k: v.isoformat() if isinstance(v, datetime) else v for k, v in self.__dict__.items()
        }


@dataclass
class ReconcileLoop:
    ctx: MissionContext
    metrics: ServeMetrics | None = None
    resync_s: float = 60.0
    trust_anew: bool = False  # no Mission applied: trust HEAD's approvers, not history's
    holder_name: str = "mc serve"  # how reads answered through the holder socket name us
    log: Callable[[Record], None] | None = None  # one line per reconcile, dispatch, run, error
    status: ServeStatus = field(init=False)
    _commit_seen: threading.Event = field(default_factory=threading.Event)
    _reader_lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.status = ServeStatus(self.ctx.clock())
        self.state: State | None = None
        self.executor = RoutingExecutor(LocalExecutor())  # local and Ray runs alike
        self.engine: Engine | None = None
        self._reader_root: Any = None
        self._detected_at: float | None = None
        self._reconcile_now = False
        self._last_fault: tuple[str, str, str | None] | None = None  # (stage, reason, commit)
        self.requests = RequestQueue()
        self.holder: HolderSocket | None = None
        self._log_seq = 0  # the last audit event the log has shown

    # --- the dashboard's view -------------------------------------------------------------

    @contextmanager
    def open_reader(self) -> Iterator[tuple[StateReader, DashboardReader]]:
        """Readers for one request, on their own cursor of the live database."""
        assert self.state is not None
        with self._reader_lock:
            con = self._reader_root.cursor()
        db = Database(self.state.db.path, con, writable=False)
        try:
            yield StateReader(db), DashboardReader(db)
        finally:
            con.close()

    def facts(self) -> dict[str, Any]:
        return self.status.as_dict()

    def cli_view(self, view: str, params: Mapping[str, str]) -> Any:
        """A read command's answer (commands/read_views.py), computed here while serve holds
        the state: for the holder socket and the dashboard's /api/cli/ routes."""
        with self.open_reader() as (reader, dash):
            now = self.ctx.clock()
            readers = Readers(reader, dash, self.ctx.repo, now, self.trust_anew, driven=True)
            return answer(view, params, readers)

    # --- lifecycle --------------------------------------------------------------------------

    def open(self) -> None:
        self.state = self.ctx.write_state()
        self._reader_root = self.state.db.con.cursor()
        paths = Paths(self.ctx.repo.root, self.ctx.repo.mc_dir)
        self.engine = Engine(self.state, paths, self.executor, self.ctx.clock, random.Random())
        self.engine.recover()
        last = self.state.reader.events(limit=1)
        self._log_seq = last[-1].seq if last else 0
        # other `mc` commands read (and queue `mc retry`) through this while we hold the state
        self.holder = HolderSocket(
            self.ctx.repo.mc_dir, self.holder_name, self.cli_view, self.submit
        )
        self.holder.start()

    def close(self) -> None:
        if self.holder is not None:
            self.holder.close()
        if self.engine is not None and self.engine.world is not None:
            self.engine.stop()
        self.executor.shutdown()
        if self.state is not None:
            self._reader_root.close()
            self.state.close()

    def submit(self, request: Request) -> Future[str]:
        """For other threads (the bot): queue a write for the loop and wake it."""
        done = self.requests.submit(request)
        self.executor.wake()
        return done

    def _run_requests(self) -> None:
        assert self.state is not None and self.engine is not None
        pending = self.requests.drain()
        for request, done in pending:
            try:
                done.set_result(self._handle(request))
            except MCError as exc:
                done.set_exception(exc)
            except Exception as exc:  # the loop outlives a request it could not carry out
                done.set_exception(exc)
                self._fault("request", exc)
        if pending:
            self.engine.reload()

    def _handle(self, request: Request) -> str:
        assert self.state is not None and self.engine is not None
        world = self.engine.world
        mission = world.mission_name if world is not None else None
        message = carry_out(request, self.state, mission, self.ctx.clock())
        match request:
            case RecordApproval():
                self._reconcile_now = True  # a plan action may now be approved
            case SetMode(mode=mode, actor=actor):
                self.status.override = f"mode={mode} by {actor}" if mode else None
            case _:
                pass
        return message

    def notice_commit(self) -> None:
        """Called by the watcher thread: a ref moved."""
        self._detected_at = time.monotonic()
        self._commit_seen.set()
        self.executor.wake()

    def run(self, stop: threading.Event) -> None:
        assert self.engine is not None
        self._guarded("reconcile", self.reconcile_head)
        next_resync = time.monotonic() + self.resync_s
        while not stop.is_set():
            self._guarded("request", self._run_requests)
            if self._commit_seen.is_set() or self._reconcile_now or time.monotonic() >= next_resync:
                self._commit_seen.clear()
                self._reconcile_now = False
                self._guarded("reconcile", self.reconcile_head)
                self._guarded("log", self._tail_log)
                next_resync = time.monotonic() + self.resync_s
            if self.engine.world is None:
                self.executor.wait(min(1.0, max(next_resync - time.monotonic(), 0.0)))
                continue
            report = self._guarded("tick", self.engine.tick)
            if report is None or report.busy:
                self._guarded("log", self._tail_log)
            if report is None:
                self._guarded("tick", self.engine.reload)  # drop a view the fault left half-done
                self.executor.wait(ERROR_PAUSE_S)
                continue
            if report.dispatched and self._detected_at is not None and self.metrics:
                self.metrics.observe_commit_to_dispatch(time.monotonic() - self._detected_at)
                self._detected_at = None
            if (
                report.busy
                or self._commit_seen.is_set()
                or stop.is_set()
                or self.requests.waiting()
            ):
                continue  # the tick's poll may have consumed the wake() that announced these
            timeout = max(next_resync - time.monotonic(), 0.0)
            if report.wake_at is not None:
                timeout = min(timeout, max((report.wake_at - self.ctx.clock()).total_seconds(), 0))
            self.executor.wait(min(timeout, 30.0))

    def reconcile_head(self) -> None:
        """Apply what HEAD asks for (LOW risk now, the rest pending), then refresh the engine."""
        assert self.state is not None and self.engine is not None
        started = time.monotonic()
        now = self.ctx.clock()
        try:
            desired = self.ctx.repo.desired("HEAD", report_dirty=False)  # nobody edits here
        except MCError as exc:
            self._bad_commit(exc, now)
            return
        found = plan_commit(self.state.reader, self.ctx.repo, desired, now, self.trust_anew)
        if found.plan.trust is not None and found.plan.trust.refused:
            self._bad_commit(UntrustedHead(found.plan.trust), now)  # recorded; nothing applied
            return
        if found.plan.actions:
            found.apply(self.state, now, ACTOR)
        self.engine.reload()
        self.status.last_commit = desired.commit
        self.status.last_reconciled_at = now
        self.status.last_error = self.status.last_error_commit = None
        self._last_fault = None
        self.status.reconciles += 1
        took = time.monotonic() - started
        if self.metrics is not None:
            self.metrics.observe_reconcile(took)
        if self.log is not None:
            self.log(reconcile_record(now, desired.commit, len(found.plan.actions), took))

    def _tail_log(self) -> None:
        """Log what the audit log gained since the last look (dispatches, runs, errors)."""
        if self.log is None or self.state is None:
            return
        found = self.state.reader.events(after_seq=self._log_seq, limit=10_000)
        if found:
            self._log_seq = found[-1].seq
        for record in records_of(found):
            self.log(record)

    def _bad_commit(self, exc: MCError, now: datetime) -> None:
        try:
            commit: str | None = self.ctx.repo.resolve("HEAD")
        except MCError:
            commit = None
        if commit == self.status.last_error_commit:
            return  # already reported; keep running the last good state
        self.status.last_error = "\n".join(exc.lines())
        self.status.last_error_commit = commit
        if self.metrics is not None:
            self.metrics.count_reconcile_error("spec")
        assert self.state is not None
        self.state.writer.append_events(
            [NewEvent(ACTOR, "reconcile.error", "Mission", {"errors": exc.lines()}, commit)], now
        )

    def _guarded(self, stage: Stage, step: Callable[[], T]) -> T | None:
        """Run one step of the loop; an exception is recorded, never the end of `mc serve`."""
        try:
            return step()
        except Exception as exc:
            self._fault(stage, exc)
            return None

    def _fault(self, stage: Stage, exc: Exception) -> None:
        """Record an unexpected exception once per (stage, reason, HEAD) and keep serving."""
        log.exception("mc serve: %s failed; carrying on", stage)
        reason = f"{type(exc).__name__}: {exc}"
        try:
            commit: str | None = self.ctx.repo.resolve("HEAD")
        except Exception:
            commit = None
        self.status.last_error = f"{stage} failed: {reason}"
        self.status.last_error_commit = commit
        if self.metrics is not None:
            self.metrics.count_reconcile_error(stage)
        if self._last_fault == (stage, reason, commit) or self.state is None:
            return  # already recorded: a fault that repeats each tick is one event, not a flood
        self._last_fault = (stage, reason, commit)
        data = {"stage": stage, "reason": reason, "errors": [f"{stage} failed: {reason}"]}
        try:
            self.state.writer.append_events(
                [NewEvent(ACTOR, "reconcile.error", "Mission", data, commit)], self.ctx.clock()
            )
        except Exception:  # the state itself is failing: the log line above is all we can do
            log.exception("mc serve: could not record the %s failure", stage)


def watch_git(repo_root: Path, loop: ReconcileLoop, stop: threading.Event) -> None:
    """Wake the loop whenever HEAD or a ref moves (watchfiles ignores .git by default, so the
    filter is our own)."""
    from watchfiles import watch

    git_dir = repo_root / ".git"

    def relevant(_change: Any, path: str) -> bool:
        rel = os.path.relpath(path, git_dir)
        return rel in GIT_TRIGGERS or rel.startswith("refs" + os.sep)

    for _ in watch(
        git_dir,
        watch_filter=relevant,
        stop_event=stop,
        debounce=20,
        step=20,
        yield_on_timeout=False,
        rust_timeout=1000,
    ):
        loop.notice_commit()


def serve_file(mc_dir: Path) -> Path:
    return mc_dir / "serve.json"


def announce(mc_dir: Path, url: str) -> None:
    """Tell other `mc` commands where the state can be read while serve holds it."""
    serve_file(mc_dir).write_text(json.dumps({"pid": os.getpid(), "url": url}))


def withdraw(mc_dir: Path) -> None:
    serve_file(mc_dir).unlink(missing_ok=True)
