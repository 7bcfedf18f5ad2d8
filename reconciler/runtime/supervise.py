"""Supervision of live local runs: exits, deadlines, heartbeats, cost caps, stop/kill; used by
LocalExecutor under its lock.

Signals go to a run's process group only while its leader is unreaped (a zombie still holds
the group id), so a recycled pid can never be hit. A sandboxed run's leader is bwrap: SIGTERM
goes to the agent's group inside the sandbox (bwrap would die of it and take the agent with it,
without the grace), SIGKILL to the sandbox's init and to bwrap, which ends the PID namespace and
everything in it.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import threading
import time
from collections.abc import Callable
from decimal import Decimal

from .cost import over_cap, parse_cost
from .live_run import LiveRun, Stop
from .nofollow import stat_regular
from .procs import sandbox_init
from .pump import OutputPump
from .sandbox import sandbox_exit_code

# A run past its spend limit is told (SIGTERM) within one look at cost.json, COST_POLL_S
# apart (a stat per look, a parse only when the file changed: ~µs; bench/cost_watch.py), and
# killed BUDGET_GRACE_S later if it has not exited: the 0.6 s the README's budget bound names.
COST_POLL_S = 0.05
BUDGET_GRACE_S = 0.5


class Supervisor:
    """Moves live runs along: reaps exited leaders, enforces limits, escalates stops."""

    def __init__(self, grace_s: float, pump: OutputPump, touch: Callable[[], None]) -> None:
        self._grace_s = grace_s
        self._pump = pump
        self._touch = touch  # tells the executor's waiters that something changed

    def step(self, run: LiveRun, now: float) -> None:
        """Reap or enforce, then stop waiting for pipes an escaped process still holds."""
        if run.returncode is None:
            if run.leader_exited:
                self._reap(run, now)
            else:
                self._enforce(run, now)
        overdue = run.returncode is not None and run.open_streams and now >= run.drain_deadline
        if overdue and not run.drain_forced:
            run.drain_forced = True
            for fd in run.stream_fds:
                self._pump.close_stream(fd)

    def begin_stop(self, run: LiveRun, stop: Stop, now: float, grace_s: float) -> None:
        """SIGTERM now; step() sends SIGKILL once grace_s has passed."""
        run.stop = stop
        run.kill_at = now + grace_s
        signal_group(run, signal.SIGTERM)
        self._touch()

    def _reap(self, run: LiveRun, now: float) -> None:
        # The leader is a zombie, so its group id cannot have been reused: kill what it left.
        signal_group(run, signal.SIGKILL)
        returncode = run.proc.wait()
        run.returncode = returncode if run.req.sandbox is None else sandbox_exit_code(returncode)
        run.ended_at = time.time()
        run.drain_deadline = now + self._grace_s

    def _enforce(self, run: LiveRun, now: float) -> None:
        if run.stop is not None:
            if not run.sigkilled and now >= run.kill_at:
                signal_group(run, signal.SIGKILL)
                run.sigkilled = True
            return
        stop = due_stop(run, now)
        if stop is not None:
            self.begin_stop(run, stop, now, self._grace(stop))

    def _grace(self, stop: Stop) -> float:
        return BUDGET_GRACE_S if stop.kind == "budget" else self._grace_s

    def watch_cost(self, run: LiveRun, now: float) -> bool:
        """The cost watch's look at one run (executor lock held): stop it once cost.json passes
        its limit, SIGKILL a stop whose grace is over. True while the run needs watching."""
        if run.returncode is not None or run.leader_exited:
            return False
        if run.stop is not None:
            if not run.sigkilled and now >= run.kill_at:
                signal_group(run, signal.SIGKILL)
                run.sigkilled = True
                self._touch()
            return not run.sigkilled
        stop = over_limit(run)
        if stop is not None:
            self.begin_stop(run, stop, now, self._grace(stop))
        return run.req.per_run_cap_usd is not None or stop is not None


def next_due(run: LiveRun) -> float:
    """Monotonic time at which step() has something to do for run without a pump event."""
    if run.returncode is not None:
        return math.inf if run.drain_forced else run.drain_deadline
    if run.stop is not None:  # after SIGKILL only the exit (a pump event) is awaited
        return math.inf if run.sigkilled else run.kill_at
    return min(run.deadline, heartbeat_due(run))  # cost.json: the cost watch (LocalExecutor)


def due_stop(run: LiveRun, now: float) -> Stop | None:
    """The limit run has passed (deadline, heartbeat, per-run cost cap), if any."""
    req = run.req
    if now >= run.deadline:
        return Stop("timeout", "retry", f"timed out after {_fmt_s(req.timeout_s)}")
    if req.heartbeat_timeout_s is not None and now >= heartbeat_due(run):
        limit = _fmt_s(req.heartbeat_timeout_s)
        return Stop("heartbeat", "abandoned", f"no heartbeat within {limit}")
    return over_limit(run)


def over_limit(run: LiveRun) -> Stop | None:
    """A budget stop when the run's cost.json says it spent more than its limit."""
    req = run.req
    cap = req.per_run_cap_usd
    if cap is None or running_cost(run) <= cap:
        return None
    return Stop("budget", req.cap_status, over_cap(cap, run.cost, req.cap_label))


def heartbeat_due(run: LiveRun) -> float:
    """Monotonic time at which the heartbeat is overdue (inf without a heartbeat limit)."""
    limit = run.req.heartbeat_timeout_s
    if limit is None:
        return math.inf
    beat = stat_regular(run.paths.heartbeat)  # the file's own mtime, never a link target's
    # No (regular) heartbeat file yet: the start counts as a beat.
    last_beat = max(run.started_at, beat.st_mtime) if beat is not None else run.started_at
    return time.monotonic() + (last_beat + limit - time.time())


def running_cost(run: LiveRun) -> Decimal:
    """The agent's latest cost.json figure; re-read only when the file changed."""
    try:
        info = run.paths.cost_json.lstat()
    except OSError:
        return run.cost
    seen = (info.st_mtime_ns, info.st_size, info.st_ino)  # ino: a same-size os.replace
    if seen != run.cost_seen:
        run.cost_seen = seen
        run.cost = max(run.cost, parse_cost(run.paths))
    return run.cost


def signal_group(run: LiveRun, sig: signal.Signals) -> None:
    """Signal the run's group; only called while the leader is unreaped (see module doc)."""
    groups = [run.proc.pid]
    if run.req.sandbox is not None:
        init = sandbox_init(run.proc.pid)  # a child of the unreaped leader: not a reused pid
        if init is not None:
            groups = [init] if sig == signal.SIGTERM else [init, run.proc.pid]
    for pgid in groups:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, sig)


def watch_run(
    pump: OutputPump,
    run: LiveRun,
    stream_done: Callable[[], None],
    leader_done: Callable[[], None],
) -> None:
    """Hand run's pipes to the pump, and have its leader's exit noticed without reaping it."""
    pump.watch_stream(run.stream_fds[0], run.stdout, stream_done)
    pump.watch_stream(run.stream_fds[1], run.stderr, stream_done)
    try:
        pidfd = os.pidfd_open(run.proc.pid)
    except OSError:  # no pidfd (old kernel): a thread waits, without reaping, instead
        waiter = threading.Thread(target=_await_exit, args=(run.proc.pid, leader_done))
        waiter.daemon = True
        waiter.start()
    else:
        pump.watch_exit(pidfd, leader_done)


def _await_exit(pid: int, leader_done: Callable[[], None]) -> None:
    os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)
    leader_done()


def _fmt_s(seconds: float) -> str:
    return f"{seconds:g}s"
