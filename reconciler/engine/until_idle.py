"""Drive the work until nothing more can happen without a person; called by `mc apply`
(commands/plan_apply.py)."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from reconciler.engine.engine import Engine
from reconciler.engine.launch import Paths
from reconciler.engine.mirror import World
from reconciler.repo.source import MissionRepo
from reconciler.runtime.executors import RoutingExecutor
from reconciler.runtime.local import LocalExecutor
from specs.money import money_json
from state.store import State

Progress = Callable[[Engine], None]


@dataclass(frozen=True)
class Converged:
    summary: dict[str, Any]
    recovered: int
    interrupted: bool
    ticks: int
    statements: int


def converge(
    repo: MissionRepo,
    state: State,
    clock: Callable[[], Any],
    progress: Progress | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    rng: random.Random | None = None,
    max_seconds: float | None = None,
    between_ticks: Callable[[], bool] | None = None,
) -> Converged | None:
    """Tick until every task is settled (DONE, FAILED, BLOCKED, NEEDS_APPROVAL, REVIEW,
    CANCELED) or waits on something only a person can change; sleep through retry backoff.
    `between_ticks` carries out writes queued by other commands (`mc retry` while `mc apply`
    holds the state); True when it wrote, and the engine takes the writes in."""
    executor = RoutingExecutor(LocalExecutor())  # wait() wakes for Ray runs too
    engine = Engine(state, Paths(repo.root, repo.mc_dir), executor, clock, rng or random.Random())
    recovered = engine.recover()
    if not engine.load():
        executor.shutdown()
        return None
    statements_before = state.db.statements
    ticks, interrupted = 0, False
    deadline = time.monotonic() + max_seconds if max_seconds else None
    try:
        while True:
            if between_ticks is not None and between_ticks():
                engine.reload()
            report = engine.tick()
            ticks += 1
            if progress is not None:
                progress(engine)
            if should_stop() or (deadline is not None and time.monotonic() > deadline):
                interrupted = True
                break
            assert engine.world is not None
            if engine.world.in_flight:
                if not report.dispatched:
                    executor.wait(0.25)  # wakes as soon as a run ends
                continue
            if report.busy:
                continue
            if report.wake_at is None:
                break
            pause = (report.wake_at - clock()).total_seconds()
            time.sleep(min(max(pause, 0.0), 0.25))
    finally:
        if interrupted or (engine.world is not None and engine.world.in_flight):
            engine.stop()
        executor.shutdown()
    assert engine.world is not None
    if interrupted and progress is not None:
        progress(engine)  # once more: the runs the stop ended, as recorded
    return Converged(
        summary(engine.world),
        recovered,
        interrupted,
        ticks,
        state.db.statements - statements_before,
    )


def summary(world: World) -> dict[str, Any]:
    """Tasks by state, runs still in flight and today's spend, for the closing report."""
    counts: dict[str, int] = {}
    for t in world.tasks.values():
        counts[t.state.value] = counts.get(t.state.value, 0) + 1
    return {
        "tasks": counts,
        "running": len(world.in_flight),
        "spent_today": money_json(world.mission_spent_today),
    }
