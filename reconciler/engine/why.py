"""Pure: why a task is not running — the one answer `mc task`, `mc tasks`, `mc explain` and
the read API give. It asks the scheduler (engine/views.decide) and the approval gates
(engine/approval_gates.gate) rather than restating their rules: when the scheduler neither
dispatches nor blocks a waiting task, one input at a time is relaxed (the backoff, the
dependencies, the mission mode, the agents' load) and the first relaxation that lets the
scheduler act names what holds the task.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import assert_never

from reconciler.engine.approval_gates import Gate, gate
from reconciler.engine.mirror import TaskRec, World
from reconciler.engine.scheduler import (
    BUDGET,
    DEPENDENCY,
    PAUSED,
    SECRET,
    AwaitApproval,
    Block,
    Complete,
    Decision,
    Deny,
    Dispatch,
    Release,
    Rework,
    TaskView,
    Unblock,
    eligible,
    schedule,
)
from reconciler.engine.views import scheduler_inputs, task_view
from reconciler.tasks.lifecycle import ACTIVE, TaskState

S = TaskState
# Categories beyond the scheduler's own (budget, dependency, paused, secret).
RUNNING, DONE, FAILED, CANCELED, READY = "running", "done", "failed", "canceled", "ready"
APPROVAL, REVIEW, DENIED, BACKOFF = "approval", "review", "denied", "backoff"
MISSION, CAPACITY, NO_AGENT, PERSON = "mission", "capacity", "no-agent", "person"


@dataclass(frozen=True, slots=True)
class Why:
    """Why a task is where it is: a category (what would move it), the detail, and until when
    it holds when that is known (a backoff's next attempt, a budget's next UTC day)."""

    category: str
    detail: str
    until: datetime | None = None
    approvals: Gate | None = None  # for approval/review waits: the votes so far


UNDRIVEN = "when `mc apply` or `mc serve` drives the mission"


def why(world: World, task: TaskRec, now: datetime, driven: bool = True) -> Why:
    """The blocking condition of one task at `now` (pure over the mirror). `driven`: a process
    (`mc apply`, `mc serve`, `mc bot`) is driving the work, so a ready task moves at its next
    tick; else it says what would move it."""
    if task.state in ACTIVE:
        return Why(RUNNING, f"running on agent {task.agent or '?'} (run {task.run or '?'})")
    if task.state == S.DONE:
        return Why(DONE, task.reason or "done")
    if task.state == S.FAILED:
        return Why(FAILED, f"{task.reason or 'failed'}; `mc retry {task.name}` requeues it")
    if task.state == S.CANCELED:
        return Why(CANCELED, task.reason or "canceled")
    view = task_view(world, task, now)
    found = _ask(world, view, now)
    if found is not None:
        return _explain(world, task, found, now, "at the next tick" if driven else UNDRIVEN)
    if task.state in (S.NEEDS_APPROVAL, S.REVIEW):
        return _approval(world, task, now)
    if task.state == S.BLOCKED:
        return _from_reason(task.reason or "blocked", now)
    return _held(world, view, now)


def _ask(world: World, view: TaskView, now: datetime, **relax: object) -> Decision | None:
    """The scheduler's decision for this one task, with some of its inputs relaxed."""
    states = world.states()
    if relax.get("dependencies"):
        states |= {d: S.DONE for d in view.depends_on}
    agents, mission = scheduler_inputs(world)
    if relax.get("load"):
        agents = {n: dataclasses.replace(a, running=0) for n, a in agents.items()}
    if relax.get("mode"):
        mission = dataclasses.replace(mission, mode="normal")
    if relax.get("backoff"):
        view = dataclasses.replace(view, next_attempt_at=None)
    decisions = schedule([view], states, agents, mission, now)
    return next((d for d in decisions if d.task == view.name), None)


def _explain(world: World, task: TaskRec, decision: Decision, now: datetime, at: str) -> Why:
    """`at`: when a ready task moves (the next tick, or once something drives the mission)."""
    match decision:
        case Dispatch(agent=agent):
            if at == UNDRIVEN:
                return Why(READY, f"runs {at} (agent {agent} is free)")
            return Why(READY, f"dispatches to agent {agent} {at}")
        case Block(reason=reason):
            return _from_reason(reason, now)
        case Unblock(reason=reason):
            return Why(READY, f"unblocks {at} ({reason})")
        case Release() | Complete():
            return Why(READY, f"approved; moves on {at}")
        case Rework(by=by):
            return Why(READY, f"{by} asked for changes; back to its agent {at}")
        case AwaitApproval():
            return _approval(world, task, now)
        case Deny():
            return Why(DENIED, "denied (by an approver, or by policy); a changed spec may ask anew")
        case _:
            assert_never(decision)


# The scheduler inputs `_held` relaxes, in the order it names them: a backoff or an unfinished
# dependency is what a person would look at first; an agent's load only once those are clear.
_RELAXABLE = ("backoff", "dependencies", "mode", "load")


def _held(world: World, view: TaskView, now: datetime) -> Why:
    """An INBOX task the scheduler leaves alone: find which input holds it.

    Several inputs can hold a task at once (its dependency is unfinished and the one agent that
    could take it is busy running that dependency): the input named is the first in
    `_RELAXABLE` that still holds it when every other input is relaxed.
    """
    everything = dict.fromkeys(_RELAXABLE, True)
    if _ask(world, view, now, **everything) is None:
        return Why(NO_AGENT, "no declared agent has the agent name or capabilities it asks for")
    holding = [r for r in _RELAXABLE if _ask(world, view, now, **{**everything, r: False}) is None]
    alone = [r for r in _RELAXABLE if _ask(world, view, now, **{r: True}) is not None]
    found = (holding or alone or ["load"])[0]
    if found == "backoff" and view.next_attempt_at is not None:
        at = view.next_attempt_at
        return Why(BACKOFF, f"retry backoff: next attempt at {at:%Y-%m-%d %H:%M:%S} UTC", at)
    if found == "dependencies":
        states = world.states()
        waiting = [f"{d} ({states.get(d, 'not declared')})" for d in view.depends_on]
        pending = [
            w for d, w in zip(view.depends_on, waiting, strict=True) if states.get(d) != S.DONE
        ]
        return Why(DEPENDENCY, "waiting for " + ", ".join(pending or waiting))
    if found == "mode":
        return Why(MISSION, f"the mission is {world.mission.mode} (mode: {world.mission.mode})")
    agents, _ = scheduler_inputs(world)
    busy = ", ".join(f"{a.name} {a.running}/{a.concurrency}" for a in eligible(view, agents))
    return Why(CAPACITY, f"every agent that could take it is busy ({busy})")


def _from_reason(reason: str, now: datetime) -> Why:
    """A scheduler Block reason (or a stored BLOCKED reason): its category is its prefix."""
    category, _, rest = reason.partition(": ")
    if category == BUDGET:
        tomorrow = datetime.combine(now.date() + timedelta(days=1), datetime.min.time())
        return Why(BUDGET, f"{rest} (budgets reset at 00:00 UTC)", tomorrow)
    if category in (DEPENDENCY, PAUSED, SECRET):
        return Why(category, rest)
    return Why(PERSON, f"{reason}; `mc retry` requeues it once fixed")


def _approval(world: World, task: TaskRec, now: datetime) -> Why:
    """Waiting for approval before dispatch, or for review after the work: votes so far."""
    found = gate(world, task, now)
    if found.denied:
        return Why(DENIED, "denied (by an approver, or by policy)", None, found)
    needed = found.needed or (2 if found.risk == "RED" else 1)
    given = ", ".join(sorted(found.approved_by)) or "nobody yet"
    who = ", ".join(sorted(world.approvers)) or "nobody: mission.yaml declares no approvers"
    what = "review of its result" if task.state == S.REVIEW else "approval before dispatch"
    detail = (
        f"waiting for {what}: {len(found.approved_by)}/{needed} given ({given});"
        f" gate: {gate_text(task, found.risk, found.rule)}; approvers: {who}"
    )
    return Why(REVIEW if task.state == S.REVIEW else APPROVAL, detail, None, found)


def gate_text(task: TaskRec, risk: str, rule: str) -> str:
    """What gates a task's dispatch (or its result, in REVIEW), for people: the spec's
    `approval:` field and/or the risk with the rule that set it (engine/approval_gates.py)."""
    risky = risk in ("HIGH", "RED", "DENY")
    by_risk = f"risk {risk} by {rule}"
    if task.state == S.REVIEW and task.spec.approval == "after":
        field = "`approval: after` in its spec"
    elif task.state != S.REVIEW and task.spec.approval == "before":
        field = "`approval: before` in its spec"
    else:
        return by_risk if risky else f"none ({by_risk})"
    return f"{field} and {by_risk}" if risky else f"{field} ({by_risk})"
