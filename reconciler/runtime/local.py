"""The local executor: each attempt as a local process group; the engine and serve loop call it.

launch() spawns (spawn.py) and returns; an OutputPump thread drains the pipes and notices the
exit; poll(), on the caller's thread, supervises (supervise.py: deadlines, heartbeats,
stop/kill escalation) and collects finished runs into Outcomes (collect.py); a cost watch
thread looks at the cost.json of every run with a spend limit each COST_POLL_S and stops it
past its limit (SIGTERM, SIGKILL BUDGET_GRACE_S later), whatever the caller's loop is doing.
This class only keeps the table of live runs and the lock and wake-ups around it.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Sequence

from .adapters import one_line
from .collect import outcome_of
from .live_run import LiveRun, Stop
from .pump import OutputPump
from .spawn import LaunchFailed, spawn_run
from .supervise import COST_POLL_S, Supervisor, next_due, watch_run
from .types import ExecutorError, LaunchRequest, Outcome, RunHandle
from .workspace import DEFAULT_INHERITED_ENV

_log = logging.getLogger(__name__)


class LocalExecutor:
    """Executor backed by subprocesses on this machine (the default `local` executor)."""

    def __init__(
        self, *, grace_s: float = 2.0, inherit_env: Sequence[str] = DEFAULT_INHERITED_ENV
    ) -> None:
        self._grace_s = grace_s
        self._inherit_env = tuple(inherit_env)
        self._cond = threading.Condition(threading.RLock())
        self._runs: dict[str, LiveRun] = {}
        self._finished: list[Outcome] = []
        self._dirty = False
        self._closed = False
        self._pump = OutputPump()
        self._supervisor = Supervisor(grace_s, self._pump, self._touch)
        self._cost_wake = threading.Event()  # a run to watch may have appeared, or shutdown
        self._cost_watch_done = False
        self._cost_watch = threading.Thread(
            target=self._watch_costs, name="mc-runtime-costs", daemon=True
        )
        self._cost_watch.start()

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
            run = spawn_run(req, self._inherit_env)
            if isinstance(run, LaunchFailed):
                return self._fail_launch(req, run)
            self._runs[req.run_id] = run
            self._watch(run)
            if req.per_run_cap_usd is not None:
                self._cost_wake.set()
            return run.handle

    def _fail_launch(self, req: LaunchRequest, failed: LaunchFailed) -> RunHandle:
        outcome = Outcome(
            req.run_id,
            failed.status,
            failed.error,
            None,
            started_at=failed.started_at,
            ended_at=time.time(),
        )
        self._finished.append(outcome)
        self._touch()
        return RunHandle(req.run_id, 0, 0)

    def _watch(self, run: LiveRun) -> None:
        def stream_done() -> None:
            with self._cond:
                run.open_streams -= 1
                self._touch()

        def leader_done() -> None:
            with self._cond:
                run.leader_exited = True
                self._touch()

        watch_run(self._pump, run, stream_done, leader_done)

    def _touch(self) -> None:
        self._dirty = True
        self._cond.notify_all()
        self._cost_wake.set()  # a stop may have begun: its SIGKILL is the cost watch's too

    def _watch_costs(self) -> None:
        """The cost watch thread: every COST_POLL_S while some run has a spend limit or a stop
        under way, one stat of each such run's cost.json (parsed only when it changed); asleep
        otherwise. SIGTERM past the limit, SIGKILL once the stop's grace is over."""
        while True:
            self._cost_wake.clear()
            with self._cond:
                if self._cost_watch_done:
                    return
                now = time.monotonic()
                watched = [self._supervisor.watch_cost(run, now) for run in self._runs.values()]
            if any(watched):
                time.sleep(COST_POLL_S)
            else:
                self._cost_wake.wait()

    # -- poll / wait ----------------------------------------------------------------------

    def poll(self) -> list[Outcome]:
        """Enforce deadlines, reap exited runs and return every outcome not yet returned."""
        with self._cond:
            now = time.monotonic()
            for run in self._runs.values():
                self._supervisor.step(run, now)
            done = [run for run in self._runs.values() if run.finishable]
            for run in done:
                del self._runs[run.handle.run_id]
            outcomes, self._finished = self._finished, []
            self._dirty = False
        return outcomes + [collected(run) for run in done]

    def wait(self, timeout: float) -> None:
        """Sleep until a pipe closes, a process exits, a deadline is due, or timeout passes."""
        with self._cond:
            if self._dirty or self._finished:
                return
            due = min((next_due(run) for run in self._runs.values()), default=math.inf)
            delay = min(timeout, due - time.monotonic())
            if delay > 0:
                self._cond.wait(delay)

    def wake(self) -> None:
        """Make a pending wait() return now (serve calls this when a commit arrives)."""
        with self._cond:
            self._touch()

    def running(self) -> list[str]:
        """Run ids launched whose outcome poll() has not returned yet."""
        with self._cond:
            return list(self._runs)

    # -- cancel / shutdown ----------------------------------------------------------------

    def cancel(self, run_id: str, reason: str) -> None:
        """Stop a run (SIGTERM now, SIGKILL after the grace, by poll()); no-op if it ended."""
        with self._cond:
            run = self._runs.get(run_id)
            if run is None or run.leader_exited or run.stop is not None:
                return
            stop = Stop("cancel", "canceled", one_line(f"canceled: {reason}"))
            self._supervisor.begin_stop(run, stop, time.monotonic(), self._grace_s)

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
                    stop = Stop("cancel", "canceled", "canceled: executor shut down")
                    self._supervisor.begin_stop(run, stop, now, grace_s)
                run.kill_at = min(run.kill_at, now + grace_s)
            self._settle(now + grace_s + self._grace_s + 1.0)
            done = list(self._runs.values())
            self._runs.clear()
        self._stop_cost_watch()
        self._pump.stop()  # closes pipes a straggler still held, so the logs are final
        outcomes = [collected(run) for run in done]
        with self._cond:
            self._finished.extend(outcomes)

    def _stop_cost_watch(self) -> None:
        with self._cond:
            self._cost_watch_done = True
        self._cost_wake.set()
        self._cost_watch.join()

    def _settle(self, give_up_at: float) -> None:
        """Drive every run to the end (or give_up_at); the caller holds the lock."""
        while True:
            now = time.monotonic()
            for run in self._runs.values():
                self._supervisor.step(run, now)
                run.drain_deadline = min(run.drain_deadline, give_up_at)
            if all(run.finishable for run in self._runs.values()) or now >= give_up_at:
                return
            self._cond.wait(min(0.05, give_up_at - now))


def collected(run: LiveRun) -> Outcome:
    """The run's Outcome (collect.py); should collecting it raise (an I/O error reading its
    files or storing its drops: the machine, not the agent), the run is a temporary failure
    saying so, instead of an exception that would lose every outcome of this poll."""
    try:
        return outcome_of(run)
    except Exception as exc:
        _log.exception("collecting run %s failed", run.handle.run_id)
        reason = one_line(f"mc could not collect the run's result: {type(exc).__name__}: {exc}")
        return Outcome(
            run.handle.run_id,
            "retry",
            reason,
            run.returncode,
            stdout_path=run.paths.stdout_log,
            stderr_path=run.paths.stderr_log,
            started_at=run.started_at,
            ended_at=run.ended_at or time.time(),
        )
