"""Approval gates on work (pure): are a task's approvals given? An input of the scheduler's
views (engine/views.py), and of the telegram bot's list of what awaits a decision.

A task is gated before dispatch by `approval: before`, by `risk: HIGH|RED`, or by a mission
policy rule matching `action: dispatch`; `approval: after` gates completion (REVIEW). HIGH
needs one approval of the task's current digest, RED two distinct approvers; a deny is final
until the spec (and so the digest) changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from reconciler.engine.mirror import TaskRec, World
from reconciler.governance.approvals import tally
from reconciler.governance.policy import Subject, matches
from reconciler.tasks.lifecycle import TaskState
from specs.fields import duration_seconds

RANK = {"LOW": 0, "HIGH": 1, "RED": 2}


@dataclass(frozen=True, slots=True)
class Gate:
    gated: bool
    approved: bool
    denied: bool
    risk: str
    rule: str


def dispatch_risk(world: World, task: TaskRec) -> tuple[str, str]:
    """(risk, rule): the task's own risk, raised (never lowered) by a matching dispatch rule."""
    risk, rule = task.spec.risk or "LOW", "task risk" if task.spec.risk else "default: low risk"
    spec = {
        "agent": task.spec.agent,
        "requires": list(task.spec.requires),
        "budget": task.spec.budget.model_dump(mode="json"),
    }
    subject = Subject("Task", task.name, "dispatch", spec, task.labels, ())
    for candidate in world.mission.policy.rules:
        if "dispatch" in candidate.match.action and matches(candidate, subject):
            if candidate.decide == "DENY":
                return "DENY", f"rule {candidate.name!r}"
            if RANK[candidate.decide] > RANK[risk]:
                risk, rule = candidate.decide, f"rule {candidate.name!r}"
            break
    return risk, rule


def gate_free(world: World, task: TaskRec) -> bool:
    """True when no approval can ever be needed to dispatch this task: no `approval: before`,
    no risk, no dispatch rule raising it (fixed until the mirror is reloaded, so cached)."""
    if task.gate_free is None:
        risk, _ = dispatch_risk(world, task)
        task.gate_free = task.spec.approval != "before" and risk == "LOW"
    return task.gate_free


def gate(world: World, task: TaskRec, now: datetime) -> Gate:
    risk, rule = dispatch_risk(world, task)
    if risk == "DENY":
        return Gate(True, False, True, risk, rule)
    if task.state == TaskState.REVIEW:
        # git records commit times in whole seconds: an approval signed in the same second
        # the task entered REVIEW came after it, so compare at that resolution
        since = task.review_since.replace(microsecond=0) if task.review_since else None
        gated = True
    else:
        gated, since = task.spec.approval == "before" or risk in ("HIGH", "RED"), None
    if not gated:
        return Gate(False, False, False, risk, rule)
    ttl = timedelta(seconds=duration_seconds(world.mission.policy.approval_ttl))
    target = f"Task/{task.name}"
    votes = tally(
        world.approvals.get(target, ()), target, task.digest, world.approvers, now - ttl, since
    )
    needed = 2 if risk == "RED" else 1
    return Gate(True, votes.satisfied(needed), bool(votes.denied_by), risk, rule)
