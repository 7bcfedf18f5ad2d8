"""What the scheduler sees: its views of the mirror's tasks, agents and mission, with the
approval gates and secrets each task's dispatch depends on. Engine.tick calls `decide`."""

from __future__ import annotations

import os
from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal

from reconciler.engine.approval_gates import gate, gate_free
from reconciler.engine.launch import MissingSecret, resolve_env
from reconciler.engine.mirror import AgentRec, TaskRec, World
from reconciler.engine.scheduler import (
    SECRET,
    AgentView,
    Decision,
    MissionView,
    TaskView,
    schedule,
)
from reconciler.tasks.lifecycle import TaskState


def decide(world: World, names: Iterable[str], now: datetime) -> list[Decision]:
    """The scheduler's decisions for these waiting tasks, at this instant."""
    views = [task_view(world, world.tasks[n], now) for n in names]
    if not views:
        return []
    agents, mission = scheduler_inputs(world)
    return schedule(views, world.states(), agents, mission, now)


def scheduler_inputs(world: World) -> tuple[dict[str, AgentView], MissionView]:
    """The agents and mission as the scheduler sees them: load, spend, and what the runs in
    flight reserved (engine/budgets.py); a run with no bound leaves its scopes nothing."""
    reserved: dict[str, Decimal] = {}
    open_ended: set[str] = set()
    for flight in world.in_flight.values():
        hold = flight.budget.reserve if flight.budget is not None else flight.per_run_cap
        if hold is None:
            open_ended.add(flight.agent)
        reserved[flight.agent] = reserved.get(flight.agent, Decimal(0)) + (hold or 0)
    agents = {
        a.name: agent_view(a, reserved.get(a.name, Decimal(0)), a.name in open_ended)
        for a in world.agents.values()
    }
    mission = MissionView(
        mode=world.mission.mode,
        spent_today=world.mission_spent_today,
        reserved=sum(reserved.values(), Decimal(0)),
        daily_cap=world.mission.budget.daily_usd,
        open_ended=bool(open_ended),
    )
    return agents, mission


def task_view(world: World, t: TaskRec, now: datetime) -> TaskView:
    spec = t.spec
    # Most tasks can never be gated; skipping the tally for them keeps a tick cheap at 10k+.
    changes: tuple[str, str] | None = None
    if t.state == TaskState.REVIEW or not gate_free(world, t):
        g = gate(world, t, now)
        gated, approved, denied = g.gated, g.approved, g.denied
        if g.changes is not None:
            changes = (g.changes.approver, g.changes.reason)
    else:
        gated = approved = denied = False
    # Only a task blocked on a missing secret needs a look at mc's environment.
    blocked_on_secret = t.state == TaskState.BLOCKED and (t.reason or "").startswith(SECRET)
    return TaskView(
        name=t.name,
        state=t.state,
        reason=t.reason,
        agent=spec.agent,
        requires=t.requires,
        depends_on=t.depends_on,
        priority=spec.priority,
        created_at=t.created_at,
        next_attempt_at=t.next_attempt_at,
        gated=gated,
        approved=approved,
        denied=denied,
        secrets_ready=not blocked_on_secret or _secrets_ready(world, t),
        changes=changes,
        per_run_cap=spec.budget.per_run_usd,
        estimated_usd=spec.budget.estimated_usd,
    )


def agent_view(a: AgentRec, reserved: Decimal, open_ended: bool = False) -> AgentView:
    return AgentView(
        name=a.name,
        capabilities=frozenset(a.spec.capabilities),
        concurrency=a.spec.concurrency,
        status=a.status,
        running=a.running,
        spent_today=a.spent_today,
        reserved=reserved,
        daily_cap=a.spec.budget.daily_usd,
        per_run_cap=a.spec.budget.per_run_usd,
        open_ended=open_ended,
    )


def _secrets_ready(world: World, task: TaskRec) -> bool:
    """Some agent that could take the task finds every secret it names in mc's environment."""
    return any(_secrets_resolve(a) for a in world.agents.values() if _serves(a, task))


def _serves(agent: AgentRec, task: TaskRec) -> bool:
    spec = task.spec
    return spec.agent in (None, agent.name) and set(spec.requires) <= set(agent.spec.capabilities)


def _secrets_resolve(agent: AgentRec) -> bool:
    try:
        resolve_env(agent.spec.env, os.environ)
    except MissingSecret:
        return False
    return True
