"""The pure planner: (Desired, Observed, now) -> Plan, no I/O; called by plan/pipeline.py."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from reconciler.governance.approvals import tally
from reconciler.governance.confinement import Unconfined, newly_unconfined
from reconciler.governance.policy import (
    SANDBOX_OFF,
    RiskDecision,
    Subject,
    no_approvers_note,
    stricter_classify,
)
from reconciler.governance.trust_chain import TrustBasis
from reconciler.plan.actions import (
    Change,
    CreateResource,
    DeleteResource,
    Plan,
    PlannedAction,
    Status,
    UpdateResource,
    key_of,
    verb_of,
)
from reconciler.plan.codec import sealed
from reconciler.plan.diff import diff_specs
from reconciler.plan.observed import Observed
from reconciler.tasks.lifecycle import STARTED
from specs.desired import Desired
from specs.fields import duration_seconds
from specs.models import MissionSpec, PolicyRule
from specs.time_math import add_seconds

KIND_ORDER = {
    k: i for i, k in enumerate(("Mission", "Agent", "Workflow", "Task", "WorkflowRun", "Approval"))
}
VERB_ORDER = {"delete": 0, "update": 1, "create": 2}  # destructive changes first
TOFU = "trust on first use"
CHAIN_BROKEN = "trust chain broken"


def build_plan(
    desired: Desired, observed: Observed, now: datetime, trust: TrustBasis | None = None
) -> Plan:
    """The plan of `desired` against `observed`. With no Mission applied, `trust` says what git
    history makes of HEAD's approvers (plan/pipeline.py derives it): when refused, every action
    is held, so nothing of the commit can be applied (trust on first use applies only to a
    commit whose approver set follows from the first one in history)."""
    tofu = observed.mission is None
    judging = _judging_policy(desired, observed)
    actions = []
    for change, subject in _changes(desired, observed):
        decision = stricter_classify(subject, judging.rules)
        if tofu and decision.rule.startswith("default:") and decision.risk != "LOW":
            decision = RiskDecision(
                "LOW", "trust on first use", "first apply trusts the initial set"
            )
        elif decision.rule.startswith("default:") and _first_approvers(subject, observed):
            decision = _first_approvers_verdict(subject)
        action = _decide(
            change,
            subject,
            decision,
            judging.approvers,
            observed,
            add_seconds(now, -judging.ttl.total_seconds()),
        )
        actions.append(_untrusted(action, trust) if tofu and trust and trust.refused else action)
    actions.sort(
        key=lambda a: (VERB_ORDER[verb_of(a.change)], KIND_ORDER[a.change.kind], a.change.name)
    )
    unconfined = _unconfined(desired, observed, actions)
    basis = trust if tofu else None
    return sealed(desired.commit, observed.serial, tuple(actions), tofu, unconfined, basis)


def _untrusted(action: PlannedAction, trust: TrustBasis) -> PlannedAction:
    """Held: HEAD's approver set does not follow from history, so nothing in it is trusted."""
    decision = RiskDecision("RED", CHAIN_BROKEN, trust.reason)
    return PlannedAction(action.change, decision, "denied", note=f"{CHAIN_BROKEN}: {trust.reason}")


def _unconfined(
    desired: Desired, observed: Observed, actions: Sequence[PlannedAction]
) -> tuple[Unconfined, ...]:
    """Agents this plan creates or changes (directly, or by the mission's sandbox) that will
    run without the sandbox: the plan says so, loudly."""
    wanted = {d.name: d.spec for d in desired.of_kind("Agent")}
    applied = {}
    for name, spec in wanted.items():
        key = f"Agent/{name}"
        old = observed.resources.get(key)
        if old is not None or key in observed.digests:  # unchanged agents are not loaded
            applied[name] = old.spec if old is not None else spec
    mission = observed.mission
    touched = [a.change.name for a in actions if a.change.kind == "Agent"]
    return newly_unconfined(
        wanted, desired.mission.spec, applied, mission.spec if mission else None, touched
    )


@dataclass(frozen=True, slots=True)
class JudgingPolicy:
    """Who approves, with which rules, for how long: the applied mission's approvers; the
    rules of the applied and the proposed mission both (the stricter decides); the shorter
    approval TTL of the two."""

    rules: tuple[Sequence[PolicyRule], ...]
    approvers: frozenset[str]
    ttl: timedelta


def _judging_policy(desired: Desired, observed: Observed) -> JudgingPolicy:
    """Once approvers are applied, the applied mission judges changes (incl. to itself); the
    proposed mission's rules judge too, so a commit can neither waive its own approval (the
    applied rules still hold) nor slip work past a rule it adds (its rules hold already)."""
    applied = observed.mission
    proposed = MissionSpec.model_validate(desired.mission.spec)
    spec = MissionSpec.model_validate(applied.spec) if applied else None
    if spec is None or not spec.approvers:
        spec = proposed
    ttl = min(
        duration_seconds(spec.policy.approval_ttl),
        duration_seconds(proposed.policy.approval_ttl),
    )
    rule_sets = (
        (spec.policy.rules,) if spec is proposed else (spec.policy.rules, proposed.policy.rules)
    )
    return JudgingPolicy(
        rule_sets, frozenset(a.name for a in spec.approvers), timedelta(seconds=ttl)
    )


def _first_approvers(subject: Subject, observed: Observed) -> bool:
    """The applied mission has no approvers yet, so its approver set and policy have nothing
    to protect: declaring the first approvers, or the rule a plan suggests, must be possible."""
    applied = observed.mission
    return subject.kind == "Mission" and applied is not None and not applied.spec.get("approvers")


def _first_approvers_verdict(subject: Subject) -> RiskDecision:
    """Trusted, unless the same change turns the sandbox off: that is never LOW by default."""
    if subject.turns_sandbox_off:
        return RiskDecision("HIGH", SANDBOX_OFF)
    return RiskDecision("LOW", TOFU, "no approvers were applied yet")


def _changes(desired: Desired, observed: Observed) -> list[tuple[Change, Subject]]:
    out: list[tuple[Change, Subject]] = []
    for key, doc in desired.docs.items():
        applied_digest = observed.digests.get(key)
        if applied_digest == doc.digest:
            continue
        applied = observed.resources.get(key)
        if applied is None:
            changed = tuple(f"spec.{k}" for k in doc.spec)
            subject = Subject(doc.kind, doc.name, "create", doc.spec, doc.labels, changed)
            out.append((CreateResource(doc.kind, doc.name, doc.digest, doc.path), subject))
        else:
            diff = diff_specs(applied.spec, doc.spec) + diff_specs(
                applied.labels, doc.labels, "metadata.labels"
            )
            paths = tuple(c.path for c in diff)
            subject = Subject(
                doc.kind,
                doc.name,
                "update",
                doc.spec,
                doc.labels,
                paths,
                before=applied.spec,
                before_labels=applied.labels,
            )
            replace = doc.kind == "WorkflowRun" and any(
                c.path.startswith(("spec.inputs", "spec.workflow")) for c in diff
            )
            change = UpdateResource(
                doc.kind, doc.name, doc.digest, applied.digest, doc.path, tuple(diff), replace
            )
            out.append((change, subject))
    for key in sorted(observed.digests.keys() - desired.docs.keys()):
        old = observed.resources[key]
        running = old.kind == "Task" and observed.task_states.get(old.name) in STARTED
        subject = Subject(old.kind, old.name, "delete", old.spec, old.labels, (), running)
        out.append((DeleteResource(old.kind, old.name, old.digest, running), subject))
    return out


def _decide(
    change: Change,
    subject: Subject,
    decision: RiskDecision,
    approvers: frozenset[str],
    observed: Observed,
    oldest_valid: datetime,
) -> PlannedAction:
    if decision.risk == "LOW":
        return PlannedAction(change, decision, "apply")
    if decision.risk == "DENY":
        return PlannedAction(change, decision, "denied", note="denied by policy")
    if len(approvers) < decision.approvals_needed:
        note = no_approvers_note(subject, decision)
        if approvers:  # RED with a single approver: two distinct people can never agree
            note = (
                f"needs {decision.approvals_needed} distinct approvers, but mission.yaml declares"
                f" only {len(approvers)}; declare another approver (itself a RED change the"
                " current ones approve), or lower it with a policy rule"
            )
        return PlannedAction(change, decision, "unapprovable", note=note)
    digest = change.old_digest if isinstance(change, DeleteResource) else change.digest
    key = key_of(change)
    votes = tally(observed.approvals.get(key, ()), key, digest, approvers, oldest_valid)
    if votes.denied_by:
        who = ", ".join(sorted(votes.denied_by))
        return PlannedAction(change, decision, "denied", note=f"denied by {who}")
    approved_by = tuple(sorted(votes.approved_by))
    ok = votes.satisfied(decision.approvals_needed)
    status: Status = "apply" if ok else "needs_approval"
    return PlannedAction(change, decision, status, approved_by)
