"""The pure scheduler: may a waiting task be dispatched now, on which agent, or why must it wait.

The one answer to "may this task be dispatched?": approvals (engine/approval_gates.py), secrets
and budgets come in as fields of the views engine/views.py builds; Engine.tick calls it and
engine/enact.py carries out the decisions it returns.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from reconciler.engine.budgets import BUDGET as BUDGET
from reconciler.engine.budgets import RunBudget, Scope, admit, per_run
from reconciler.tasks.lifecycle import GIVEN_UP, TaskState

S = TaskState
# A BLOCKED task's reason starts with its category: what may unblock it.
DEPENDENCY, PAUSED, SECRET = "dependency", "paused", "secret"
NO_BUDGET = RunBudget(None, None, "none")  # no cap, no per-run cap, no estimate


@dataclass(frozen=True, slots=True)
class TaskView:
    name: str
    state: TaskState
    reason: str | None
    agent: str | None
    requires: frozenset[str]
    depends_on: tuple[str, ...]
    priority: int
    created_at: datetime
    next_attempt_at: datetime | None = None
    gated: bool = False  # needs an approval before dispatch
    approved: bool = False
    denied: bool = False
    secrets_ready: bool = True  # every agent that could take it finds its secrets in mc's env
    per_run_cap: Decimal | None = None  # the task's own budget.per_run_usd
    estimated_usd: Decimal | None = None
    changes: tuple[str, str] | None = None  # (by, feedback): a reviewer asked for changes


@dataclass(frozen=True, slots=True)
class AgentView:
    name: str
    capabilities: frozenset[str]
    concurrency: int
    status: str  # active | paused | draining | quarantined
    running: int = 0
    spent_today: Decimal = Decimal(0)
    reserved: Decimal = Decimal(0)  # what its runs in flight reserved (engine/budgets.py)
    daily_cap: Decimal | None = None
    per_run_cap: Decimal | None = None
    open_ended: bool = False  # a run of it in flight has no bound (started before any cap)

    def scope(self) -> Scope:
        return Scope(f"agent {self.name}", self.spent_today, self.reserved, self.daily_cap,
                     self.open_ended)  # fmt: skip


@dataclass(frozen=True, slots=True)
class MissionView:
    mode: str = "normal"  # normal | paused | draining
    spent_today: Decimal = Decimal(0)
    reserved: Decimal = Decimal(0)
    daily_cap: Decimal | None = None
    open_ended: bool = False

    def scope(self) -> Scope:
        return Scope("mission", self.spent_today, self.reserved, self.daily_cap, self.open_ended)


@dataclass(frozen=True, slots=True)
class Dispatch:
    task: str
    agent: str
    budget: RunBudget = NO_BUDGET  # what the run reserves and may spend


@dataclass(frozen=True, slots=True)
class Block:
    task: str
    reason: str  # starts with its category: "budget: …", "dependency: …"


@dataclass(frozen=True, slots=True)
class Unblock:
    task: str
    reason: str


@dataclass(frozen=True, slots=True)
class AwaitApproval:
    task: str


@dataclass(frozen=True, slots=True)
class Release:
    """A task waiting in NEEDS_APPROVAL may go: its approval arrived, or its gate was removed."""

    task: str
    reason: str = "approved"


@dataclass(frozen=True, slots=True)
class Deny:
    """An approver said no (before dispatch, or at review), or policy denies the task."""

    task: str


@dataclass(frozen=True, slots=True)
class Complete:
    """A task waiting in REVIEW (approval: after) got its approval."""

    task: str


@dataclass(frozen=True, slots=True)
class Rework:
    """A reviewer asked for changes to a task in REVIEW: back to its agent with their words."""

    task: str
    feedback: str
    by: str


Decision = Dispatch | Block | Unblock | AwaitApproval | Release | Deny | Complete | Rework


def schedule(
    tasks: Iterable[TaskView],
    states: Mapping[str, TaskState],
    agents: Mapping[str, AgentView],
    mission: MissionView,
    now: datetime,
) -> list[Decision]:
    """Decisions for this instant. `states` maps every task name to its state (dependencies).

    Order of dispatch: priority (high first), then age (old first), then name; each task goes
    to the least-loaded eligible agent with a free slot, which respects `concurrency`.
    """
    decisions: list[Decision] = []
    ready: list[TaskView] = []
    for task in tasks:
        decision = _gate(task, states, agents, mission)
        if decision is not None:
            decisions.append(decision)
        elif task.state == S.INBOX and _runnable(task, states, now):
            ready.append(task)
    if mission.mode != "normal":
        return decisions
    load = {a.name: a.running for a in agents.values()}
    scopes = {a.name: a.scope() for a in agents.values()}
    mission_scope = mission.scope()
    # Pop tasks in dispatch order only while a slot is free anywhere: with 10k waiting and two
    # slots a tick costs O(n) to heapify, not a full sort.
    heap = [((-t.priority, t.created_at, t.name), t) for t in ready]
    heapq.heapify(heap)
    free = sum(max(a.concurrency - a.running, 0) for a in agents.values() if a.status == "active")
    order = (heapq.heappop(heap)[1] for _ in range(len(heap)))
    for task in order:
        if free <= 0:
            break
        candidates = [a for a in _eligible(task, agents) if load[a.name] < a.concurrency]
        if not candidates:
            continue
        agent = min(candidates, key=lambda a: (load[a.name] / a.concurrency, a.name))
        budget = _budget(task, agent, scopes[agent.name], mission_scope)
        if isinstance(budget, str):
            decisions.append(Block(task.name, budget))
            continue
        load[agent.name] += 1
        free -= 1
        scopes[agent.name] = scopes[agent.name].held(budget)
        mission_scope = mission_scope.held(budget)
        decisions.append(Dispatch(task.name, agent.name, budget))
    return decisions


def _gate(
    task: TaskView,
    states: Mapping[str, TaskState],
    agents: Mapping[str, AgentView],
    mission: MissionView,
) -> Decision | None:
    """Moves in and out of BLOCKED / NEEDS_APPROVAL; None when nothing changes."""
    failed = [d for d in task.depends_on if states.get(d) in GIVEN_UP]
    if task.state == S.INBOX:
        if failed:
            return Block(task.name, f"{DEPENDENCY}: {failed[0]} is {states[failed[0]]}")
        if task.gated and task.denied:
            return Deny(task.name)
        if task.gated and not task.approved:
            return AwaitApproval(task.name)
        held = _unavailable(task, agents) if _deps_done(task, states) else None
        return Block(task.name, held) if held else None
    if task.state == S.NEEDS_APPROVAL:
        if task.denied:
            return Deny(task.name)
        if not task.gated:  # a commit removed `approval: before` (or the rule): nothing to wait for
            return Release(task.name, "approval no longer needed")
        return Release(task.name) if task.approved else None
    if task.state == S.REVIEW:
        if task.denied:
            return Deny(task.name)
        if task.changes is not None:
            return Rework(task.name, task.changes[1], task.changes[0])
        return Complete(task.name) if task.approved else None
    if task.state == S.BLOCKED and task.reason:
        if task.reason.startswith(DEPENDENCY) and not failed:
            return Unblock(task.name, "dependency recovered")
        if task.reason.startswith(BUDGET) and _budget_recovered(task, agents, mission):
            return Unblock(task.name, "budget available again")
        if task.reason.startswith(PAUSED) and _unavailable(task, agents) is None:
            return Unblock(task.name, "an agent is available again")
        if task.reason.startswith(SECRET) and task.secrets_ready:
            return Unblock(task.name, "secret available")
    return None


def _deps_done(task: TaskView, states: Mapping[str, TaskState]) -> bool:
    return all(states.get(d) == S.DONE for d in task.depends_on)


def _runnable(task: TaskView, states: Mapping[str, TaskState], now: datetime) -> bool:
    if task.next_attempt_at is not None and task.next_attempt_at > now:
        return False
    return _deps_done(task, states)


def _candidates(task: TaskView, agents: Mapping[str, AgentView]) -> list[AgentView]:
    """Agents that could do the task, whatever their status."""
    if task.agent is not None:
        agent = agents.get(task.agent)
        return [agent] if agent is not None and task.requires <= agent.capabilities else []
    return [a for a in agents.values() if task.requires <= a.capabilities]


def _eligible(task: TaskView, agents: Mapping[str, AgentView]) -> list[AgentView]:
    return [a for a in _candidates(task, agents) if a.status == "active"]


def eligible(task: TaskView, agents: Mapping[str, AgentView]) -> list[AgentView]:
    """The active agents that could take `task` (its agent name and capabilities), busy or
    not: the agents whose load can hold it back (engine/why.py names them)."""
    return _eligible(task, agents)


def _unavailable(task: TaskView, agents: Mapping[str, AgentView]) -> str | None:
    """Why no agent can take the task now (all candidates paused, draining or quarantined)."""
    found = _candidates(task, agents)
    if not found or any(a.status == "active" for a in found):
        return None
    return f"{PAUSED}: " + ", ".join(f"agent {a.name} is {a.status}" for a in found)


def _budget(task: TaskView, agent: AgentView, own: Scope, mission: Scope) -> RunBudget | str:
    """The run's reservation if it fits under the agent's and the mission's caps, else why not."""
    return admit(per_run(task.per_run_cap, agent.per_run_cap), task.estimated_usd, (own, mission))


def _budget_recovered(
    task: TaskView, agents: Mapping[str, AgentView], mission: MissionView
) -> bool:
    """Some agent that could take the task has room in its caps for the task's run now."""
    return any(
        not isinstance(_budget(task, a, a.scope(), mission.scope()), str)
        for a in _eligible(task, agents)
    )
