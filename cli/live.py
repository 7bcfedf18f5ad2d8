"""The live view `mc apply` shows while agents work: tasks by state, running agents, spend."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from types import FrameType

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from cli.render import id_column, money
from reconciler.engine.engine import Engine
from reconciler.serve.log_lines import records_of
from reconciler.serve.log_lines import render as render_line
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
    """Ctrl-C (SIGINT) or SIGTERM (a timeout, CI, systemd) asks the loop to stop at the next
    tick: running agents stopped, their runs recorded as canceled, state consistent. The
    caller exits 128 + the signal's number (130 for SIGINT, 143 for SIGTERM)."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.signum: int | None = None  # the first stop signal received

    @property
    def requested(self) -> bool:
        return self.signum is not None

    def __call__(self) -> bool:
        return self.requested

    @property
    def exit_code(self) -> int:
        """128 + the signal's number, the shell's convention for a death by that signal."""
        return 128 + (self.signum or signal.SIGINT)

    @contextmanager
    def installed(self) -> Iterator[None]:
        def handler(signum: int, frame: FrameType | None) -> None:
            if self.requested:  # a second signal: the person (or supervisor) really wants out
                raise KeyboardInterrupt
            self.signum = signum

        previous = {sig: signal.signal(sig, handler) for sig in self.SIGNALS}
        try:
            yield
        finally:
            for sig, before in previous.items():
                signal.signal(sig, before)


class LiveView:
    """On a terminal: the live view, refreshed at most 4 times a second. Otherwise (a pipe, a
    CI log): one plain line per dispatch, finished run and error, as `mc serve` logs them."""

    def __init__(self, console: Console, since: datetime) -> None:
        self.console = console
        self.live: Live | None = None
        self.last = 0.0
        self.since = since  # events before this (earlier applies) are not this apply's news
        self.seq: int | None = None  # the last audit event printed

    def __call__(self, engine: Engine) -> None:
        if not self.console.is_terminal:
            self._print_lines(engine)
            return
        now = time.monotonic()
        if now - self.last < 0.25:
            return
        self.last = now
        if self.live is None:
            self.live = Live(render_engine(engine), console=self.console, auto_refresh=False)
            self.live.start()
        self.live.update(render_engine(engine), refresh=True)

    def _print_lines(self, engine: Engine) -> None:
        if self.seq is None:
            found = engine.reader.events(since=self.since, limit=10_000)
        else:
            found = engine.reader.events(after_seq=self.seq, limit=10_000)
        if found:
            self.seq = found[-1].seq
        file = self.console.file
        for record in records_of(found):
            file.write(render_line(record, "text") + "\n")
        file.flush()  # a pipe shows each line as it happens, not at exit

    def close(self) -> None:
        if self.live is not None:
            self.live.stop()
