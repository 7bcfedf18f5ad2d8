"""Pure risk classification: the mission's rules, then defaults; for plan/build and engine gates."""

from __future__ import annotations

import dataclasses
import fnmatch
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

from reconciler.governance.confinement import (
    SANDBOX_FIELDS,
    confinement_changed,
    turns_sandbox_off,
)
from specs.models import PolicyRule

AGENT_EXEC_FIELDS = ("spec.command", "spec.env", "spec.code_blobs", "spec.executor")
AGENT_EXEC = "default: agent command/env"
SANDBOX_OFF = "default: sandbox turned off"
AGENT_CONFINEMENT = "default: agent sandbox/mounts/network/limits"
MISSION_SANDBOX = "default: mission sandbox changed"
MISSION_SETTINGS = "default: mission settings changed"
# Mission fields any change of which is LOW: they only describe, or stop, work. Everything else
# decides where secrets go (telegram), where agents run (executor, sandbox), how much they may
# spend, or how long an approval counts — a commit nobody approved must not change those.
MISSION_LOW_FIELDS = ("spec.mode", "spec.description")
MISSION_BUDGET = "spec.budget.daily_usd"
AGENT_BUDGET = "default: agent budget raised or removed"
AGENT_CAPS = ("daily_usd", "per_run_usd")
# What a rule must name in `match.fields` to lower the decision of each default.
RULE_FIELDS = {
    AGENT_EXEC: AGENT_EXEC_FIELDS,
    SANDBOX_OFF: ("spec.sandbox",),
    AGENT_CONFINEMENT: SANDBOX_FIELDS,
    MISSION_SANDBOX: ("spec.sandbox",),
    MISSION_SETTINGS: ("spec",),
}
NO_APPROVERS_HINT = (
    "mission.yaml declares no approvers, so this can never be approved; declare approvers, or"
    " lower it with a policy rule such as {name: %s, match: {kind: [%s]%s}, decide: LOW}"
)


Verb = Literal["create", "update", "delete"]


@dataclass(frozen=True, slots=True)
class RiskDecision:
    """The policy decision for one action and the rule that made it."""

    risk: Literal["LOW", "HIGH", "RED", "DENY"]
    rule: str
    note: str | None = None

    @property
    def approvals_needed(self) -> int:
        return {"LOW": 0, "HIGH": 1, "RED": 2, "DENY": 0}[self.risk]


@dataclass(frozen=True, slots=True)
class Subject:
    """What a rule can look at: one resource and what this action does to it."""

    kind: str
    name: str
    verb: Verb | Literal["dispatch"]
    spec: dict[str, Any]  # new spec, or the old one for a delete
    labels: dict[str, str]
    changed: tuple[str, ...]  # changed field paths; every field for a create
    running: bool = False
    before: dict[str, Any] | None = None  # the applied spec, for an update
    before_labels: dict[str, str] | None = None  # the applied labels, for an update
    # rules match what the resource was (applied spec and labels) rather than what it becomes:
    # a commit must not earn a lowering rule by giving itself the label or capability it names
    as_applied: bool = False

    @property
    def rule_spec(self) -> dict[str, Any]:
        """The spec a rule's criteria look at (see `as_applied`)."""
        return self.before if self.as_applied and self.before is not None else self.spec

    @property
    def rule_labels(self) -> dict[str, str]:
        """The labels a rule's criteria look at (see `as_applied`)."""
        applied = self.before_labels if self.as_applied else None
        return self.labels if applied is None else applied

    @property
    def turns_sandbox_off(self) -> bool:
        return self.verb in ("create", "update") and turns_sandbox_off(
            self.kind, self.before, self.spec
        )


def classify(subject: Subject, rules: Sequence[PolicyRule]) -> RiskDecision:
    """First matching mission rule wins; otherwise the defaults below.

    One exception: when the first match may not lower a change that turns a sandbox off (it
    does not name `spec.sandbox`), the first later match that does name it decides — so the
    order of a broad rule and a sandbox rule does not silently undo the sandbox rule.
    """
    matching = [rule for rule in rules if matches(rule, subject)]
    if not matching:
        return default_verdict(subject)
    first = matching[0]
    decision = _sandbox_floor(RiskDecision(first.decide, f"rule {first.name!r}"), first, subject)
    if decision.rule != SANDBOX_OFF:
        return decision
    named = next((r for r in matching if "spec.sandbox" in r.match.fields), None)
    return RiskDecision(named.decide, f"rule {named.name!r}") if named else decision


RANK = {"LOW": 0, "HIGH": 1, "RED": 2, "DENY": 3}


def stricter_classify(subject: Subject, rule_sets: Sequence[Sequence[PolicyRule]]) -> RiskDecision:
    """The strictest decision of several rule sets (the applied and the proposed policy): a
    rule set that lowers a decision never wins over one that does not. Ties keep the first.

    An update is judged twice by each rule set: as it becomes and as it was (its applied
    labels and spec matched by the rules), so relabelling an agent into a rule that lowers
    its risk, in the same commit that changes its command, is not lowered by that rule."""
    decisions = [classify(subject, rules) for rules in rule_sets]
    best = decisions[0]
    for decision in decisions[1:]:
        if RANK[decision.risk] > RANK[best.risk]:
            note = "a rule of the proposed policy; it holds from the commit that adds it"
            best = RiskDecision(decision.risk, decision.rule, decision.note or note)
    if subject.verb == "update" and subject.before is not None:
        as_was = dataclasses.replace(subject, as_applied=True)
        for rules in rule_sets:
            decision = classify(as_was, rules)
            if RANK[decision.risk] > RANK[best.risk]:
                note = "judged as it was applied: a commit cannot earn a rule by relabelling"
                best = RiskDecision(decision.risk, decision.rule, decision.note or note)
    return best


def _sandbox_floor(decision: RiskDecision, rule: PolicyRule, s: Subject) -> RiskDecision:
    """A rule lowers a change that turns a sandbox off to LOW only by naming `spec.sandbox` in
    its fields: a broad rule (say, every Agent change is LOW) written before the sandbox
    existed must not waive it silently."""
    if decision.risk != "LOW" or not s.turns_sandbox_off or "spec.sandbox" in rule.match.fields:
        return decision
    note = f"rule {rule.name!r} would allow it, but does not name spec.sandbox in its fields"
    return RiskDecision("HIGH", SANDBOX_OFF, note)


def default_verdict(s: Subject) -> RiskDecision:
    """The defaults, in order (README: Policy):

    - changing the approver set, or replacing the Mission, is RED (judged by the approvers
      already applied);
    - turning a sandbox off (`sandbox: none` on the mission or an agent), or any other change
      of the mission's sandbox, is HIGH;
    - changing the policy rules is HIGH (a rule could otherwise waive its own approval);
    - any other Mission change is HIGH (telegram, executor, drops, approval TTL, labels, a
      budget raised or removed) except its mode, its description and a lowered or newly
      set daily budget, which stay LOW so an operator never waits to stop or slow work;
    - a changed agent sandbox, mounts, network or limits is HIGH (what it can reach);
    - a new agent, or a changed agent command, env or executor, is HIGH (it decides what runs,
      and where);
    - an agent's daily or per-run cap raised or removed is HIGH (lowered or newly set: LOW);
    - deleting a task with work in flight is HIGH;
    - everything else is LOW.
    """
    # a create or delete of the Mission after the first apply is a rename: a new approver set
    if s.kind == "Mission" and (s.verb != "update" or _touches(s.changed, "spec.approvers")):
        return RiskDecision("RED", "default: approver set changed")
    if s.turns_sandbox_off:
        return RiskDecision("HIGH", SANDBOX_OFF)
    if s.kind == "Mission" and s.verb == "update" and confinement_changed(s.kind, s.before, s.spec):
        return RiskDecision("HIGH", MISSION_SANDBOX)
    if s.kind == "Mission" and s.verb == "update" and _touches(s.changed, "spec.policy.rules"):
        return RiskDecision("HIGH", "default: policy rules changed")
    if s.kind == "Mission" and s.verb == "update":
        guarded = mission_guarded_changes(s.before or {}, s.spec, s.changed)
        if guarded:
            return RiskDecision("HIGH", MISSION_SETTINGS, f"changes {', '.join(guarded)}")
    if s.kind == "Agent" and s.verb != "delete" and confinement_changed(s.kind, s.before, s.spec):
        return RiskDecision("HIGH", AGENT_CONFINEMENT)
    if s.kind == "Agent" and s.verb != "delete" and _touches_any(s.changed, AGENT_EXEC_FIELDS):
        return RiskDecision("HIGH", AGENT_EXEC)
    if s.kind == "Agent" and s.verb == "update" and _touches(s.changed, "spec.budget"):
        raised = [c for c in AGENT_CAPS if not _budget_lowered(s.before or {}, s.spec, c)]
        if raised:
            return RiskDecision("HIGH", AGENT_BUDGET, f"changes budget.{', budget.'.join(raised)}")
    if s.kind == "Task" and s.verb == "delete" and s.running:
        return RiskDecision("HIGH", "default: deleting a running task")
    return RiskDecision("LOW", "default: low risk")


def mission_guarded_changes(
    before: dict[str, Any], after: dict[str, Any], changed: Sequence[str]
) -> tuple[str, ...]:
    """The changed Mission field paths that are not LOW by default (see `default_verdict`)."""
    out = []
    for path in changed:
        if _touches(MISSION_LOW_FIELDS, path):
            continue
        if _touches((MISSION_BUDGET,), path) and _budget_lowered(before, after):
            continue
        out.append(path)
    return tuple(out)


def _budget_lowered(before: dict[str, Any], after: dict[str, Any], cap: str = "daily_usd") -> bool:
    """A cap set where there was none, made smaller, or left as it was; removing one is
    raising it."""
    old = (before.get("budget") or {}).get(cap)
    new = (after.get("budget") or {}).get(cap)
    if new is None:
        return old is None
    return old is None or Decimal(str(new)) <= Decimal(str(old))


def matches(rule: PolicyRule, s: Subject) -> bool:
    m = rule.match
    return (
        (not m.kind or s.kind in m.kind)
        and (not m.action or s.verb in m.action)
        and (not m.name or any(fnmatch.fnmatchcase(s.name, pattern) for pattern in m.name))
        and (not m.agent or _agent_of(s) in m.agent)
        and (not m.capability or bool(set(m.capability) & _capabilities_of(s)))
        and all(s.rule_labels.get(k) == v for k, v in m.labels.items())
        and (not m.fields or _touches_any(s.changed, m.fields))
        and (m.cost_over is None or _estimated_cost(s) > m.cost_over)
    )


def no_approvers_note(s: Subject, decision: RiskDecision) -> str:
    """How to get unstuck: the rule that would lower this decision (naming its fields)."""
    named = RULE_FIELDS.get(decision.rule)
    fields = f", fields: [{', '.join(named)}]" if named else ""
    return NO_APPROVERS_HINT % (f"allow-{s.kind.lower()}-{s.verb}", s.kind, fields)


def _touches_any(changed: Sequence[str], fields: Sequence[str]) -> bool:
    return any(_touches(changed, f) for f in fields)


def _touches(changed: Sequence[str], field: str) -> bool:
    return any(
        c == field or c.startswith(field + ".") or field.startswith(c + ".") for c in changed
    )


def _agent_of(s: Subject) -> str | None:
    if s.kind == "Agent":
        return s.name
    agent = s.rule_spec.get("agent")
    return agent if isinstance(agent, str) else None


def _capabilities_of(s: Subject) -> set[str]:
    if s.kind == "Agent":
        return set(s.rule_spec.get("capabilities", []))
    return set(s.rule_spec.get("requires", []))


def _estimated_cost(s: Subject) -> Decimal:
    budget = s.rule_spec.get("budget") or {}
    value = budget.get("estimated_usd") or budget.get("per_run_usd")
    return Decimal(str(value)) if value is not None else Decimal(0)
