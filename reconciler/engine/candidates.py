"""Which waiting tasks a tick looks at, without building a view of every one; and when the next
retry falls due. Engine.tick asks before each scheduling pass."""

from __future__ import annotations

import heapq
import time
from dataclasses import dataclass, field
from datetime import datetime

from reconciler.engine.mirror import TaskRec, World
from reconciler.engine.scheduler import BUDGET, PAUSED, SECRET
from reconciler.tasks.lifecycle import WAITING, TaskState

FULL_PASS_S = 30.0  # a safety net: an incremental pass can only miss what time alone changes
# held by something outside the task: spend, room and mc's environment change with every tick
HELD = (BUDGET, PAUSED, SECRET)


@dataclass
class Candidates:
    """A full pass (after a load, a new day or a quarantine, and at least every FULL_PASS_S)
    looks at every waiting task. Otherwise: tasks whose state moved since the last look, the
    tasks depending on them (their gates may open or close), tasks held by budget, paused
    agents or secrets, and the best few ready tasks per agent with a free slot — which is all
    a tick can start. At 10k waiting tasks this is a few ms instead of a third of a second."""

    full: bool = True  # the next pass looks at every waiting task
    _last_full: float = 0.0
    _seen: dict[str, tuple[TaskState, datetime | None]] = field(default_factory=dict)
    _dependents: dict[str, list[str]] | None = None

    def everything_next(self) -> None:
        """The mirror was (re)loaded, a day began or an agent was held: look at all of them."""
        self.full = True
        self._dependents = None

    def pick(self, world: World, now: datetime) -> list[str]:
        seen = {n: (t.state, t.next_attempt_at) for n, t in world.tasks.items()}
        full = self.full or time.monotonic() - self._last_full > FULL_PASS_S
        if full or self._dependents is None:
            self._dependents = {}
            for t in world.tasks.values():
                for dep in t.depends_on:
                    self._dependents.setdefault(dep, []).append(t.name)
        changed = [n for n, key in seen.items() if self._seen.get(n) != key]
        self._seen = seen
        if full:
            self.full, self._last_full = False, time.monotonic()
            return [n for n, t in world.tasks.items() if t.state in WAITING]
        picked = set(changed)
        picked.update(
            n
            for n, t in world.tasks.items()
            if t.state == TaskState.BLOCKED and (t.reason or "").startswith(HELD)
        )
        for name in changed:
            picked.update(self._dependents.get(name, ()))
        picked.update(_ready_heads(world, now))
        return [n for n in picked if n in world.tasks and world.tasks[n].state in WAITING]


def next_wake(world: World, now: datetime) -> datetime | None:
    """The earliest future retry among waiting tasks."""
    waits = [
        t.next_attempt_at
        for t in world.tasks.values()
        if t.state == TaskState.INBOX and t.next_attempt_at is not None and t.next_attempt_at > now
    ]
    return min(waits) if waits else None


def _ready_heads(world: World, now: datetime) -> list[str]:
    """The first few INBOX tasks in dispatch order for each agent with room (and for tasks
    that go by capability), enough to fill every free slot."""
    room = {a.name: a.spec.concurrency - a.running for a in world.agents.values()}
    if sum(max(r, 0) for r in room.values()) <= 0:
        return []
    buckets: dict[str | None, list[TaskRec]] = {}
    for t in world.tasks.values():
        if t.state == TaskState.INBOX and (t.next_attempt_at is None or t.next_attempt_at <= now):
            buckets.setdefault(t.spec.agent, []).append(t)
    heads: list[str] = []
    for agent, tasks in buckets.items():
        free = sum(max(r, 0) for r in room.values()) if agent is None else room.get(agent, 0)
        if free <= 0:
            continue
        best = heapq.nsmallest(
            free * 4 + 8, tasks, key=lambda t: (-t.spec.priority, t.created_at, t.name)
        )
        heads.extend(t.name for t in best)
    return heads
