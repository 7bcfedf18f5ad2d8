"""The live view `mc apply` shows while agents work: tasks by state, running agents, spend."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from cli.render import id_column, money
from reconciler.engine.engine import Engine
from reconciler.tasks.lifecycle import TaskState

STATE_ORDER = tuple(TaskState)  # the enum's order: the way work flows
STATE_STYLE = {
    TaskState.DONE: "green",
    TaskState.FAILED: "red",
    TaskState.BLOCKED: "yellow",
    TaskState.NEEDS_APPROVAL: "yellow",
}


def render_engine(engine: Engine) -> Group:
    world = engine.world
    assert world is not None
    counts: dict[str, int] = {}
    for task in world.tasks.values():
        counts[task.state] = counts.get(task.state, 0) + 1
    states = Text("Tasks: ")
    for state in STATE_ORDER:
        if counts.get(state):
            states.append(f"{state} {counts[state]}  ", style=STATE_STYLE.get(state, ""))
    running = Table(id_column("run"), "task", "agent", "attempt", title="Running", expand=False)
    for flight in list(world.in_flight.values())[:12]:
        running.add_row(flight.run_id, flight.task, flight.agent, str(flight.attempt))
    spend = Text(f"Spent today: {money(world.mission_spent_today)}")
    cap = world.mission.budget.daily_usd
    if cap is not None:
        spend.append(f" of {money(cap)}")
    return Group(states, spend, running)


class Stopper:
    """Ctrl-C asks the loop to stop at the next tick (children killed, state consistent)."""

    def __init__(self) -> None:
        self.requested = False

    def __call__(self) -> bool:
        return self.requested

    @contextmanager
    def installed(self) -> Iterator[None]:
        def handler(signum: int, frame: FrameType | None) -> None:
            if self.requested:  # a second Ctrl-C: the person really wants out
                raise KeyboardInterrupt
            self.requested = True

        previous = signal.signal(signal.SIGINT, handler)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)


class LiveView:
    """Refreshes at most 4 times a second; silent when stdout is not a terminal."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.live: Live | None = None
        self.last = 0.0

    def __call__(self, engine: Engine) -> None:
        if not self.console.is_terminal:
            return
        now = time.monotonic()
        if now - self.last < 0.25:
            return
        self.last = now
        if self.live is None:
            self.live = Live(render_engine(engine), console=self.console, auto_refresh=False)
            self.live.start()
        self.live.update(render_engine(engine), refresh=True)

    def close(self) -> None:
        if self.live is not None:
            self.live.stop()
