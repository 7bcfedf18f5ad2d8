"""What a finished run leaves behind besides its task's state: spend, memory, content drops;
called by engine/enact.py when it records a run's end."""

from __future__ import annotations

from datetime import datetime

from reconciler.engine.budgets import overrun
from reconciler.engine.mirror import InFlight, TaskRec, World
from reconciler.runtime.types import Outcome
from state.records import DropRow, NewEvent
from state.write_batch import DropWrite, LedgerEntry, MemoryWrite, WriteBatch

ACTOR = "reconciler"


def account(
    world: World, batch: WriteBatch, outcome: Outcome, flight: InFlight, now: datetime
) -> None:
    """Reported cost goes to the ledger and to the agent's spend today, as reported even when
    it is more than the run was allowed: then a `budget.overrun` event says by how much (the
    runtime has failed such a run, so the loop breaker counts it)."""
    if outcome.cost_usd <= 0:
        return
    over = overrun(flight.budget, outcome.cost_usd)
    if over is not None:
        data = {"task": flight.task, "agent": flight.agent, **over}
        batch.events.append(NewEvent(ACTOR, "budget.overrun", f"Run/{outcome.run_id}", data))
    batch.ledger.append(
        LedgerEntry(now, now.date(), outcome.run_id, flight.agent, flight.task, outcome.cost_usd)
    )
    agent = world.agents.get(flight.agent)
    if agent is not None:
        agent.spent_today += outcome.cost_usd
    else:  # its agent was deleted while it ran: the spend is still the mission's
        world.retired_spent_today += outcome.cost_usd


def remember(world: World, batch: WriteBatch, outcome: Outcome, task: TaskRec, agent: str) -> None:
    """result.json `memory: {agent: {k: v}, task: {k: v}}`; a null value forgets the key."""
    for scope_kind, name in (("agent", agent), ("task", task.name)):
        updates = outcome.memory.get(scope_kind)
        if not isinstance(updates, dict):
            continue
        scope = f"{scope_kind}:{name}"
        bucket = world.memory.setdefault(scope, {})
        for key, value in updates.items():
            batch.memory.append(MemoryWrite(scope, str(key), value))
            if value is None:
                bucket.pop(str(key), None)
            else:
                bucket[str(key)] = value


def keep_drops(
    world: World, batch: WriteBatch, outcome: Outcome, task: TaskRec, now: datetime
) -> None:
    """Record the run's drops; the runtime stored them under .mc/drops/ already (safely,
    bounded: runtime/drop_store.py)."""
    kept = []
    for drop in outcome.drops:
        write = DropWrite(
            outcome.run_id, task.name, drop.path, drop.sha256, drop.size, drop.media_type
        )
        batch.drops.append(write)
        kept.append(
            DropRow(
                write.run_id,
                write.task,
                write.path,
                write.sha256,
                write.size,
                write.media_type,
                now,
            )
        )
    if kept:
        world.drops[task.name] = kept  # later tasks read the latest run's drops
