"""The local executor: each attempt as a local process group; the applier's drive loop calls it.

launch() starts a process and returns; an OutputPump thread drains its pipes and notices its
exit; poll() (on the caller's thread) enforces deadlines, reaps, and builds Outcomes through
the adapters. Each run is its own session/process group, so a stop signals everything the
agent started. Signals go to the group only while its leader is unreaped (a zombie still
holds the group id), so a recycled pid can never be hit.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import math
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal, InvalidOperation
from typing import Literal

from .adapters import AgentReport, Finished, interpret, one_line
from .logs import CappedLog
from .procs import process_start_time
from .pump import OutputPump
from .types import ExecutorError, LaunchRequest, Outcome, OutcomeStatus, RunHandle
from .workspace import (
    DEFAULT_INHERITED_ENV,
    WorkspacePaths,
    child_env,
    collect_drops,
    prepare_workspace,
    read_capped,
    redact_text,
    secrets_to_redact,
)

_COST_CHECK_S = 0.25  # how often wait() wakes up to look at cost.json when a cap is set
_COST_FILE_CAP = 64 * 1024
_PIPE_SIZE = 1 << 20
_TEMPORARY_ERRNOS = {errno.EAGAIN, errno.ENOMEM, errno.EMFILE, errno.ENFILE, errno.ETXTBSY}

StopKind = Literal["timeout", "heartbeat", "budget", "cancel"]


@dataclass(frozen=True, slots=True)
class _Stop:
    """Why the executor is stopping a run, and what that makes the outcome."""

    kind: StopKind
    status: OutcomeStatus
    message: str


@dataclass(eq=False)
class _Run:
    """Mutable bookkeeping of one live run; guarded by LocalExecutor._cond."""

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
    stop: _Stop | None = None
    kill_at: float = math.inf  # monotonic time of the SIGKILL escalation
    sigkilled: bool = False
    cost: Decimal = Decimal(0)
    cost_seen: tuple[int, int] | None = None  # (mtime_ns, size) of cost.json last read

    @property
    def finishable(self) -> bool:
        return self.returncode is not None and self.open_streams == 0


def _fmt_s(seconds: float) -> str:
    return f"{seconds:g}s"


def _launch_error(exc: OSError | ValueError, argv0: str) -> tuple[OutcomeStatus, str]:
    if isinstance(exc, ValueError):
        return "failed", one_line(f"could not start agent command {argv0}: {exc}")
    if isinstance(exc, FileNotFoundError):
        return "failed", f"agent command not found: {argv0}"
    if isinstance(exc, PermissionError):
        return "failed", f"agent command not executable (permission denied): {argv0}"
    status: OutcomeStatus = "retry" if exc.errno in _TEMPORARY_ERRNOS else "failed"
    return status, one_line(f"could not start agent command {argv0}: {exc.strerror or exc}")


def _open_pipe() -> tuple[int, int]:
    r, w = os.pipe2(os.O_CLOEXEC)
    with contextlib.suppress(OSError):  # a bigger pipe means fewer wake-ups for chatty agents
        fcntl.fcntl(r, fcntl.F_SETPIPE_SZ, _PIPE_SIZE)
    return r, w


class LocalExecutor:
    """Executor backed by subprocesses on this machine (the default `local` executor)."""

    def __init__(
        self, *, grace_s: float = 2.0, inherit_env: Sequence[str] = DEFAULT_INHERITED_ENV
    ) -> None:
        self._grace_s = grace_s
        self._inherit_env = tuple(inherit_env)
        self._cond = threading.Condition(threading.RLock())
        self._runs: dict[str, _Run] = {}
        self._finished: list[Outcome] = []
        self._dirty = False
        self._closed = False
        self._pump = OutputPump()

    def __enter__(self) -> LocalExecutor:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.shutdown(self._grace_s)

    # -- launch ---------------------------------------------------------------------------

    def launch(self, req: LaunchRequest) -> RunHandle:
        """Start the run; problems with the agent or its workspace become Outcomes."""
        with self._cond:
            if self._closed:
                raise ExecutorError("the local executor is shut down; it cannot launch runs")
            if req.run_id in self._runs or any(o.run_id == req.run_id for o in self._finished):
                raise ExecutorError(f"run id {req.run_id!r} is already in use")
            started_at = time.time()
            if not req.command:
                return self._fail_launch(req, started_at, "failed", "agent command is empty")
            try:
                paths = prepare_workspace(req)
                secrets = secrets_to_redact(req)
                stdout = CappedLog(paths.stdout_log, "stdout", req.log_cap_bytes, secrets)
                stderr = CappedLog(paths.stderr_log, "stderr", req.log_cap_bytes, secrets)
            except OSError as exc:
                message = f"could not prepare workspace {req.workspace}: {exc.strerror or exc}"
                return self._fail_launch(req, started_at, "retry", one_line(message))
            run = self._spawn(req, paths, (stdout, stderr), started_at)
            if isinstance(run, RunHandle):
                stdout.close()
                stderr.close()
                return run
            self._runs[req.run_id] = run
            self._watch(run)
            return run.handle

    def _spawn(
        self,
        req: LaunchRequest,
        paths: WorkspacePaths,
        logs: tuple[CappedLog, CappedLog],
        started_at: float,
    ) -> _Run | RunHandle:
        try:
            out_r, out_w = _open_pipe()
        except OSError as exc:
            return self._fail_launch(req, started_at, "retry", f"cannot create a pipe: {exc}")
        try:
            err_r, err_w = _open_pipe()
        except OSError as exc:
            os.close(out_r)
            os.close(out_w)
            return self._fail_launch(req, started_at, "retry", f"cannot create a pipe: {exc}")
        try:
            proc = subprocess.Popen(
                list(req.command),
                cwd=paths.root,
                env=child_env(req, paths, self._inherit_env),
                stdin=subprocess.DEVNULL,
                stdout=out_w,
                stderr=err_w,
                start_new_session=True,
                close_fds=True,
            )
        except (OSError, ValueError) as exc:  # ValueError: a NUL byte in argv or env
            os.close(out_r)
            os.close(err_r)
            status, message = _launch_error(exc, req.command[0])
            return self._fail_launch(req, started_at, status, message)
        finally:
            os.close(out_w)
            os.close(err_w)
        return _Run(
            req=req,
            paths=paths,
            proc=proc,
            handle=RunHandle(req.run_id, proc.pid, process_start_time(proc.pid) or 0),
            stdout=logs[0],
            stderr=logs[1],
            stream_fds=(out_r, err_r),
            started_at=started_at,
            deadline=time.monotonic() + req.timeout_s,
        )

    def _fail_launch(
        self, req: LaunchRequest, started_at: float, status: OutcomeStatus, error: str
    ) -> RunHandle:
        outcome = Outcome(
            req.run_id, status, error, None, started_at=started_at, ended_at=time.time()
        )
        self._finished.append(outcome)
        self._touch()
        return RunHandle(req.run_id, 0, 0)

    def _watch(self, run: _Run) -> None:
        def stream_done() -> None:
            with self._cond:
                run.open_streams -= 1
                self._touch()

        def leader_done() -> None:
            with self._cond:
                run.leader_exited = True
                self._touch()

        self._pump.watch_stream(run.stream_fds[0], run.stdout, stream_done)
        self._pump.watch_stream(run.stream_fds[1], run.stderr, stream_done)
        try:
            pidfd = os.pidfd_open(run.proc.pid)
        except OSError:  # no pidfd (old kernel): a thread waits, without reaping, instead
            waiter = threading.Thread(target=_await_exit, args=(run.proc.pid, leader_done))
            waiter.daemon = True
            waiter.start()
        else:
            self._pump.watch_exit(pidfd, leader_done)

    def _touch(self) -> None:
        self._dirty = True
        self._cond.notify_all()

    # -- poll / wait ----------------------------------------------------------------------

    def poll(self) -> list[Outcome]:
        """Enforce deadlines, reap exited runs and return every outcome not yet returned."""
        with self._cond:
            now = time.monotonic()
            for run in self._runs.values():
                self._step(run, now)
            done = [run for run in self._runs.values() if run.finishable]
            for run in done:
                del self._runs[run.handle.run_id]
            outcomes, self._finished = self._finished, []
            self._dirty = False
        return outcomes + [self._outcome(run) for run in done]

    def wait(self, timeout: float) -> None:
        """Sleep until a pipe closes, a process exits, a deadline is due, or timeout passes."""
        with self._cond:
            if self._dirty or self._finished:
                return
            delay = min(timeout, self._next_due() - time.monotonic())
            if delay > 0:
                self._cond.wait(delay)

    def wake(self) -> None:
        """Make a pending wait() return now (serve calls this when a commit arrives)."""
        with self._cond:
            self._dirty = True
            self._cond.notify_all()

    def running(self) -> list[str]:
        """Run ids launched whose outcome poll() has not returned yet."""
        with self._cond:
            return list(self._runs)

    def _next_due(self) -> float:
        due = math.inf
        for run in self._runs.values():
            if run.returncode is not None:
                if not run.drain_forced:
                    due = min(due, run.drain_deadline)
            elif run.stop is not None:
                if not run.sigkilled:  # after SIGKILL only the exit (a pump event) is awaited
                    due = min(due, run.kill_at)
            else:
                due = min(due, run.deadline, self._heartbeat_due(run))
                if run.req.per_run_cap_usd is not None:
                    due = min(due, time.monotonic() + _COST_CHECK_S)
        return due

    # -- enforcement ----------------------------------------------------------------------

    def _step(self, run: _Run, now: float) -> None:
        if run.returncode is None:
            if run.leader_exited:
                self._reap(run, now)
            else:
                self._enforce(run, now)
        overdue = run.returncode is not None and run.open_streams and now >= run.drain_deadline
        if overdue and not run.drain_forced:  # an escaped process holds a pipe: stop waiting
            run.drain_forced = True
            for fd in run.stream_fds:
                self._pump.close_stream(fd)

    def _reap(self, run: _Run, now: float) -> None:
        # The leader is a zombie, so its group id cannot have been reused: kill what it left.
        self._signal(run, signal.SIGKILL)
        run.returncode = run.proc.wait()
        run.ended_at = time.time()
        run.drain_deadline = now + self._grace_s

    def _enforce(self, run: _Run, now: float) -> None:
        if run.stop is not None:
            if not run.sigkilled and now >= run.kill_at:
                self._signal(run, signal.SIGKILL)
                run.sigkilled = True
            return
        stop = self._due_stop(run, now)
        if stop is not None:
            self._begin_stop(run, stop, now, self._grace_s)

    def _due_stop(self, run: _Run, now: float) -> _Stop | None:
        req = run.req
        if now >= run.deadline:
            return _Stop("timeout", "retry", f"timed out after {_fmt_s(req.timeout_s)}")
        if req.heartbeat_timeout_s is not None and now >= self._heartbeat_due(run):
            limit = _fmt_s(req.heartbeat_timeout_s)
            return _Stop("heartbeat", "abandoned", f"no heartbeat within {limit}")
        cap = req.per_run_cap_usd
        if cap is not None and self._running_cost(run) > cap:
            message = f"per-run budget ${cap} exceeded: ${run.cost} reported"
            return _Stop("budget", "failed", message)
        return None

    def _begin_stop(self, run: _Run, stop: _Stop, now: float, grace_s: float) -> None:
        run.stop = stop
        run.kill_at = now + grace_s
        self._signal(run, signal.SIGTERM)
        self._touch()

    def _signal(self, run: _Run, sig: signal.Signals) -> None:
        """Signal the run's group; only called while the leader is unreaped (see module doc)."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(run.proc.pid, sig)

    def _heartbeat_due(self, run: _Run) -> float:
        """Monotonic time at which the heartbeat is overdue (inf without a heartbeat limit)."""
        limit = run.req.heartbeat_timeout_s
        if limit is None:
            return math.inf
        try:
            last_beat = max(run.started_at, run.paths.heartbeat.stat().st_mtime)
        except OSError:
            last_beat = run.started_at  # the start counts as a beat
        return time.monotonic() + (last_beat + limit - time.time())

    def _running_cost(self, run: _Run) -> Decimal:
        """The agent's latest cost.json figure; re-read only when the file changed."""
        try:
            info = run.paths.cost_json.lstat()
        except OSError:
            return run.cost
        seen = (info.st_mtime_ns, info.st_size)
        if seen != run.cost_seen:
            run.cost_seen = seen
            run.cost = max(run.cost, parse_cost(run.paths))
        return run.cost

    # -- cancel / shutdown ----------------------------------------------------------------

    def cancel(self, run_id: str, reason: str) -> None:
        """Stop a run (SIGTERM now, SIGKILL after the grace, by poll()); no-op if it ended."""
        with self._cond:
            run = self._runs.get(run_id)
            if run is None or run.leader_exited or run.stop is not None:
                return
            stop = _Stop("cancel", "canceled", one_line(f"canceled: {reason}"))
            self._begin_stop(run, stop, time.monotonic(), self._grace_s)

    def shutdown(self, grace_s: float = 2.0) -> None:
        """Cancel every run, SIGKILL after grace_s, reap all; poll() still returns outcomes."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            now = time.monotonic()
            for run in self._runs.values():
                if run.leader_exited:
                    continue
                if run.stop is None:
                    stop = _Stop("cancel", "canceled", "canceled: executor shut down")
                    self._begin_stop(run, stop, now, grace_s)
                run.kill_at = min(run.kill_at, now + grace_s)
            self._settle(now + grace_s + self._grace_s + 1.0)
            done = list(self._runs.values())
            self._runs.clear()
        self._pump.stop()  # closes pipes a straggler still held, so the logs are final
        outcomes = [self._outcome(run) for run in done]
        with self._cond:
            self._finished.extend(outcomes)

    def _settle(self, give_up_at: float) -> None:
        """Drive every run to the end (or give_up_at); the caller holds the lock."""
        while True:
            now = time.monotonic()
            for run in self._runs.values():
                self._step(run, now)
                run.drain_deadline = min(run.drain_deadline, give_up_at)
            if all(run.finishable for run in self._runs.values()) or now >= give_up_at:
                return
            self._cond.wait(min(0.05, give_up_at - now))

    # -- outcome --------------------------------------------------------------------------

    def _outcome(self, run: _Run) -> Outcome:
        """Combine the adapter's report with the executor's own knowledge (stops, caps)."""
        run.cost = max(run.cost, parse_cost(run.paths))
        report = self._verdict(run)
        cost = max(report.cost_usd, run.cost)
        report = apply_cap(replace(report, cost_usd=cost), run.req.per_run_cap_usd)
        return Outcome(
            run_id=run.handle.run_id,
            status=report.status,
            error=redact_text(report.error, secrets_to_redact(run.req)),
            exit_code=run.returncode,
            output=report.output,
            outputs=report.outputs,
            cost_usd=report.cost_usd,
            tokens=report.tokens,
            memory=report.memory,
            drops=collect_drops(run.paths.out_dir),
            stdout_path=run.paths.stdout_log,
            stderr_path=run.paths.stderr_log,
            started_at=run.started_at,
            ended_at=run.ended_at or time.time(),
        )

    def _verdict(self, run: _Run) -> AgentReport:
        if run.returncode is None:  # survived SIGKILL until shutdown gave up (stuck in D)
            return AgentReport("retry", "did not exit after SIGKILL; left running")
        fin = Finished(
            returncode=run.returncode,
            paths=run.paths,
            stdout_kept=run.stdout.kept,
            stdout_truncated=run.stdout.truncated,
            result_cap_bytes=run.req.result_cap_bytes,
        )
        report = interpret(run.req.protocol, fin)
        if run.stop is None:
            return report
        how = " (SIGTERM, then SIGKILL)" if run.sigkilled else " (SIGTERM)"
        message = run.stop.message + (how if run.stop.kind != "cancel" else "")
        # What the agent managed to report about spend still counts.
        return AgentReport(run.stop.status, message, cost_usd=report.cost_usd, tokens=report.tokens)


def _await_exit(pid: int, leader_done: Callable[[], None]) -> None:
    os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)
    leader_done()


def parse_cost(paths: WorkspacePaths) -> Decimal:
    """cost_usd from the agent's running cost.json; 0 if absent or unreadable."""
    read = read_capped(paths.cost_json, _COST_FILE_CAP)
    if read.kind != "ok":
        return Decimal(0)
    try:
        value = json.loads(read.data, parse_float=Decimal)["cost_usd"]
        cost = Decimal(value) if not isinstance(value, bool) else Decimal(0)
    except (ValueError, TypeError, KeyError, InvalidOperation):
        return Decimal(0)
    return cost if cost.is_finite() and cost >= 0 else Decimal(0)


def apply_cap(report: AgentReport, cap: Decimal | None) -> AgentReport:
    """A final cost above the per-run cap fails the run permanently (the cost is kept)."""
    if cap is None or report.cost_usd <= cap or report.status in ("canceled", "failed"):
        return report
    message = f"per-run budget ${cap} exceeded: ${report.cost_usd} reported"
    return replace(report, status="failed", error=message)
