"""Approval gates on work (pure): are a task's approvals given? An input of the scheduler's
views (engine/views.py), and of the telegram bot's list of what awaits a decision.

A task is gated before dispatch by `approval: before`, by `risk: HIGH|RED`, or by a mission
policy rule matching `action: dispatch`; `approval: after` gates completion (REVIEW). HIGH
needs one approval of the task's current digest, RED two distinct approvers; a deny is final
until the spec (and so the digest) changes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from reconciler.engine.mirror import TaskRec, World
from reconciler.governance.approvals import GivenApproval, tally
from reconciler.governance.policy import Subject, matches
from reconciler.tasks.lifecycle import TaskState
from specs.models import PolicyRule
from specs.time_math import before

RANK = {"LOW": 0, "HIGH": 1, "RED": 2}


@dataclass(frozen=True, slots=True)
class Gate:
    gated: bool
    approved: bool
    denied: bool
    risk: str
    rule: str
    needed: int = 0  # distinct approvals it takes (0: not gated)
    approved_by: frozenset[str] = frozenset()
    changes: GivenApproval | None = None  # the newest request for changes (in REVIEW)


def dispatch_risk(world: World, task: TaskRec) -> tuple[str, str]:
    """(risk, rule): the task's own risk, raised (never lowered) by the first matching dispatch
    rule of the applied policy and of the last planned commit's (a rule arriving with a task
    gates it at once; a commit dropping a rule cannot ungate work before it is approved)."""
    risk, rule = task.spec.risk or "LOW", "task risk" if task.spec.risk else "default: low risk"
    spec = {
        "agent": task.spec.agent,
        "requires": list(task.spec.requires),
        "budget": task.spec.budget.model_dump(mode="json"),
    }
    subject = Subject("Task", task.name, "dispatch", spec, task.labels, ())
    for rules in (world.mission.policy.rules, world.proposed_rules):
        found = _dispatch_rule(rules, subject)
        if found is None:
            continue
        if found.decide == "DENY":
            return "DENY", f"rule {found.name!r}"
        if RANK[found.decide] > RANK[risk]:
            risk, rule = found.decide, f"rule {found.name!r}"
    return risk, rule


def _dispatch_rule(rules: Sequence[PolicyRule], subject: Subject) -> PolicyRule | None:
    """The first rule matching `action: dispatch` for this task, if any."""
    return next((r for r in rules if "dispatch" in r.match.action and matches(r, subject)), None)


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
        # a review approval counts only when mc first saw it after the task entered REVIEW:
        # one signed (or dated) earlier approved a result that did not exist yet
        since = task.review_since
        gated = True
    else:
        gated, since = task.spec.approval == "before" or risk in ("HIGH", "RED"), None
    if not gated:
        return Gate(False, False, False, risk, rule)
    oldest = before(now, world.mission.policy.approval_ttl)
    target = f"Task/{task.name}"
    votes = tally(
        world.approvals.get(target, ()), target, task.digest, world.approvers, oldest, since
    )
    needed = 2 if risk == "RED" else 1
    fresh = [c for c in votes.changes if not _consumed(c, task, since)]
    changes = fresh[-1] if fresh and task.state == TaskState.REVIEW else None
    approved = votes.satisfied(needed)
    return Gate(
        True, approved, bool(votes.denied_by), risk, rule, needed, votes.approved_by, changes
    )


def _consumed(request: GivenApproval, task: TaskRec, since: datetime | None) -> bool:
    """A request for changes already sent back: a task reworked within the second of the
    request would otherwise see it again (git times are whole seconds)."""
    return (
        task.rework > 0
        and request.reason == (task.feedback or "")
        and (since is not None and request.at <= since)
    )
