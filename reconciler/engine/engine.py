"""The engine: run events in, writes and launches out, one batched transaction per tick.

Called by `mc apply` (engine/until_idle.py, until nothing more can happen without a person)
and by `mc serve` (serve/loop.py). Intent before side effect: a run row (LAUNCHING) is
committed before its process is spawned, and the run is marked RUNNING in the same tick it
is spawned, so a crash at any point leaves something `recover()` can find and finish.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from reconciler.engine.candidates import Candidates, next_wake
from reconciler.engine.enact import Enact
from reconciler.engine.launch import Paths, ray_placement
from reconciler.engine.mirror import InFlight, World, load_world
from reconciler.engine.outcome_rules import why_stale
from reconciler.engine.recovery import Orphan, adopt, end_unadopted, find_orphans, orphan_events
from reconciler.engine.views import decide
from reconciler.runtime.boundary import checked_outcome
from reconciler.runtime.executors import RoutingExecutor
from reconciler.runtime.types import Executor, Outcome
from state.store import State, StateReader
from state.write_batch import write_batch

BATCH_WINDOW_S = 0.004


@dataclass
class TickReport:
    dispatched: int = 0
    finished: int = 0
    changed: int = 0
    wake_at: datetime | None = None  # earliest future retry among waiting tasks

    @property
    def busy(self) -> bool:
        return bool(self.dispatched or self.finished or self.changed)


class Engine:
    """Drives the applied state: `recover`, `load`, then `tick` until done; `reload` after
    each apply; `stop` to end (children killed, their runs requeued)."""

    def __init__(
        self,
        state: State,
        paths: Paths,
        executor: Executor,
        clock: Callable[[], datetime],
        rng: random.Random | None = None,
    ) -> None:
        self._state, self._paths = state, paths
        # Runs go where their request says (local, or a Ray cluster: runtime/executors.py).
        self._executor = (
            executor if isinstance(executor, RoutingExecutor) else RoutingExecutor(executor)
        )
        self._clock, self._rng = clock, rng or random.Random()
        self._world: World | None = None
        self._stopping = False
        self._dirty = True  # something happened that may change what to dispatch
        self._candidates = Candidates()
        self._wake_at: datetime | None = None
        self._orphans: list[Orphan] = []
        self._unrecorded: list[Outcome] = []  # ended runs a failed write left unrecorded

    @property
    def world(self) -> World | None:
        """The mirror of the applied state (read it; only the engine writes it)."""
        return self._world

    @property
    def reader(self) -> StateReader:
        """The state this engine writes, for reading (progress views tail its audit log)."""
        return self._state.reader

    # --- setup -------------------------------------------------------------------------------

    def recover(self) -> int:
        """Kill what a dead reconciler left running; the next tick records how each run ended
        (with the result its agent left, if it wrote a complete, valid one)."""
        self._orphans = find_orphans(self._state, self._reattach())
        return len(self._orphans)

    def _reattach(self) -> set[str]:
        """Runs of a dead reconciler that a Ray cluster still holds: taken over, not killed."""
        world = load_world(self._state.reader, self._clock().date())
        if world is None:
            return set()
        targets = [
            p
            for agent in world.agents.values()
            if (p := ray_placement(world.mission.executor, agent.spec)) is not None
        ]
        if not targets:
            return set()
        ids = [run.id for run in self._state.reader.runs(states=["LAUNCHING", "RUNNING"])]
        return self._executor.reattach(ids, targets)

    def load(self) -> bool:
        self._world = load_world(self._state.reader, self._clock().date())
        self._dirty = True
        self._candidates.everything_next()
        if self._world is None and self._orphans:
            end_unadopted(self._state, self._orphans, self._clock())
            self._orphans = []
        return self._world is not None

    def reload(self) -> None:
        """Take in newly applied state (serve, after each commit) without losing runs in
        flight; stop runs whose task no longer wants them or whose agent is quarantined."""
        old = self._world
        self.load()
        if old is None or self._world is None:
            return
        world = self._world
        world.in_flight = old.in_flight
        world.memory, world.drops = old.memory | world.memory, world.drops
        for flight in world.in_flight.values():
            task, agent = world.tasks.get(flight.task), world.agents.get(flight.agent)
            if agent is not None:
                agent.running += 1
            state = task.state if task is not None else None
            stale = flight.stale or why_stale(state, None, flight.run_id)
            if stale is not None:
                if flight.stale is None:
                    flight.stale = stale
                    self._executor.cancel(flight.run_id, stale)
                continue
            assert task is not None
            task.run = flight.run_id
            if agent is None or agent.status == "quarantined":
                why = agent.reason if agent is not None else None
                self._executor.cancel(flight.run_id, f"agent quarantined: {why or 'gone'}")

    # --- one tick ----------------------------------------------------------------------------

    def tick(self) -> TickReport:
        """Record finished runs, dispatch what may start, write once, launch, mark started."""
        world = self._world
        assert world is not None, "load() first"
        now = self._clock()
        enact = Enact(world, self._paths, now, self._rng, self._stopping)
        outcomes = self._finished_runs(world, now)
        flights = {run_id: (f, f.stale) for run_id, f in world.in_flight.items()}
        for outcome in outcomes:
            enact.run_finished(outcome)
        report = TickReport(finished=len(outcomes))
        self._schedule(world, enact, now, report, bool(outcomes))
        try:
            self._commit(enact)
        except Exception:
            self._keep_unrecorded(world, outcomes, flights)
            raise
        self._unrecorded = []
        self._launch(enact)
        report.wake_at = self._wake_at
        return report

    def _finished_runs(self, world: World, now: datetime) -> list[Outcome]:
        """How runs ended (those a failed write left unrecorded first, then recovered orphans),
        each checked at the trust boundary: a value the state cannot store fails its run
        instead of the tick's one transaction (which would take every other outcome down with
        it, and again on each recovery)."""
        ended = [checked_outcome(o) for o in self._ended_runs(world, now)]
        return [*self._unrecorded, *ended]

    def _keep_unrecorded(
        self,
        world: World,
        outcomes: list[Outcome],
        flights: dict[str, tuple[InFlight, str | None]],
    ) -> None:
        """The tick's write failed (a full disk, an I/O error): nothing of it is in the state,
        and the executor will not report these runs' ends again. Keep them in flight as they
        were and offer their outcomes again next tick, so they are recorded once the state can
        be written; the runs this tick would have started were never spawned. The caller
        reloads the mirror from the state (serve does after any failed tick)."""
        self._unrecorded = outcomes
        world.in_flight.clear()
        for run_id, (flight, stale) in flights.items():
            flight.stale = stale  # a stop decided in the lost batch is decided (and sent) again
            world.in_flight[run_id] = flight
        self._dirty = True

    def _ended_runs(self, world: World, now: datetime) -> list[Outcome]:
        outcomes = adopt(world, self._orphans, now) if self._orphans else []
        outcomes += self._executor.poll()
        if outcomes and len(outcomes) < len(world.in_flight):
            # Runs started together tend to end together: a few ms of patience turns several
            # transactions into one (each commit costs ~1-3 ms here; a run rarely lasts so little).
            deadline = time.monotonic() + BATCH_WINDOW_S
            while len(outcomes) < len(world.in_flight) and time.monotonic() < deadline:
                self._executor.wait(max(deadline - time.monotonic(), 0.0))
                outcomes += self._executor.poll()
        return outcomes

    def _schedule(
        self, world: World, enact: Enact, now: datetime, report: TickReport, ended: bool
    ) -> None:
        """Scheduling only changes when something happened: a run ended, a retry came due, a
        gate moved, a new day began or the mirror was (re)loaded. Skipping idle ticks keeps a
        tick O(finished runs) instead of O(all waiting tasks)."""
        due = self._wake_at is not None and now >= self._wake_at
        if world.roll_day(now.date()):
            self._dirty = True
            self._candidates.everything_next()
        if enact.held_agent:
            self._candidates.everything_next()
        if not (ended or due or self._dirty):
            return
        self._dirty = False
        if self._stopping:
            return
        for decision in decide(world, self._candidates.pick(world, now), now):
            if enact.decision(decision):
                report.dispatched += 1
            else:  # settled without an agent (skipped, failed, blocked): schedule again
                report.changed += 1  # now, so its dependents do not wait for a new reconcile
        self._dirty = report.changed > 0
        self._wake_at = next_wake(world, now)

    def _commit(self, enact: Enact) -> None:
        """One transaction for the batch, then the cancels it asked for."""
        if not enact.batch.empty():
            enact.workflow_runs()
            if self._orphans:  # adopted this tick: their outcomes are kept if the write fails
                enact.batch.events.extend(orphan_events(self._orphans))
                self._orphans = []
            write_batch(self._state.db, enact.batch, enact.now)
        for run_id, why in enact.cancels:
            self._executor.cancel(run_id, why)
        enact.cancels.clear()

    def _launch(self, enact: Enact) -> None:
        """Spawn only after the intent is committed; record each run as started at once."""
        if not enact.launches:
            return
        world = enact.world
        started = Enact(world, self._paths, self._clock(), self._rng, self._stopping)
        for req in enact.launches:
            handle = self._executor.launch(req)
            flight = world.in_flight.get(req.run_id)
            if flight is not None:
                flight.pid, flight.proc_start = handle.pid, handle.start_time
                started.run_started(flight)
        self._commit(started)

    # --- stopping ----------------------------------------------------------------------------

    def stop(self, grace_s: float = 2.0) -> None:
        """Kill every child and record their runs as requeued (they do not count as attempts)."""
        self._stopping = True
        self._executor.shutdown(grace_s)
        self.tick()
