"""The pure planner: (Desired, Observed, now) -> Plan, no I/O; called by `mc plan` / `mc apply`."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any, assert_never

from reconciler.governance.approvals import tally
from reconciler.governance.policy import (
    RUNNING_STATES,
    RiskDecision,
    Subject,
    classify,
    no_approvers_note,
)
from reconciler.plan.actions import (
    Change,
    CreateResource,
    DeleteResource,
    PlannedAction,
    Status,
    UpdateResource,
    key_of,
    verb_of,
)
from reconciler.plan.diff import FieldChange, diff_specs
from reconciler.plan.observed import Observed
from specs.desired import Desired
from specs.fields import duration_seconds
from specs.models import MissionSpec, PolicyRule

KIND_ORDER = {
    k: i for i, k in enumerate(("Mission", "Agent", "Workflow", "Task", "WorkflowRun", "Approval"))
}
VERB_ORDER = {"delete": 0, "update": 1, "create": 2}  # destructive changes first
PLAN_FORMAT = 1


@dataclass(frozen=True)
class Plan:
    """A reviewed plan: applying it does exactly this, or is refused as stale."""

    commit: str | None
    serial: int
    actions: tuple[PlannedAction, ...]
    trust_on_first_use: bool
    digest: str

    @property
    def changes(self) -> int:
        return len(self.actions)

    def counts(self) -> dict[str, int]:
        counts = {"create": 0, "update": 0, "delete": 0, "needs_approval": 0, "blocked": 0}
        for action in self.actions:
            counts[verb_of(action.change)] += 1
            if action.status == "needs_approval":
                counts["needs_approval"] += 1
            elif action.status in ("denied", "unapprovable"):
                counts["blocked"] += 1
        return counts


TOFU = "trust on first use"


def build_plan(desired: Desired, observed: Observed, now: datetime) -> Plan:
    tofu = observed.mission is None
    rules, approvers, ttl = _judging_policy(desired, observed)
    actions = []
    for change, subject in _changes(desired, observed):
        decision = classify(subject, rules)
        if tofu and decision.rule.startswith("default:") and decision.risk != "LOW":
            decision = RiskDecision(
                "LOW", "trust on first use", "first apply trusts the initial set"
            )
        elif decision.rule.startswith("default:") and _first_approvers(subject, observed):
            decision = RiskDecision("LOW", TOFU, "no approvers were applied yet")
        actions.append(_decide(change, subject, decision, approvers, observed, now - ttl))
    actions.sort(
        key=lambda a: (VERB_ORDER[verb_of(a.change)], KIND_ORDER[a.change.kind], a.change.name)
    )
    return _sealed(desired.commit, observed.serial, tuple(actions), tofu)


def _judging_policy(
    desired: Desired, observed: Observed
) -> tuple[Sequence[PolicyRule], frozenset[str], timedelta]:
    """Once approvers are applied, the applied mission judges changes (incl. to itself)."""
    applied = observed.mission
    spec = MissionSpec.model_validate(applied.spec) if applied else None
    if spec is None or not spec.approvers:
        spec = MissionSpec.model_validate(desired.mission.spec)
    ttl = timedelta(seconds=duration_seconds(spec.policy.approval_ttl))
    return spec.policy.rules, frozenset(a.name for a in spec.approvers), ttl


def _first_approvers(subject: Subject, observed: Observed) -> bool:
    """The applied mission has no approvers yet, so its approver set and policy have nothing
    to protect: declaring the first approvers, or the rule a plan suggests, must be possible."""
    applied = observed.mission
    return subject.kind == "Mission" and applied is not None and not applied.spec.get("approvers")


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
            subject = Subject(
                doc.kind, doc.name, "update", doc.spec, doc.labels, tuple(c.path for c in diff)
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
        running = old.kind == "Task" and observed.task_states.get(old.name) in RUNNING_STATES
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
    if not approvers:
        return PlannedAction(change, decision, "unapprovable", note=no_approvers_note(subject))
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


# --- serialisation: the saved plan file and `--json` share one shape ----------------------


def _sealed(
    commit: str | None, serial: int, actions: tuple[PlannedAction, ...], tofu: bool
) -> Plan:
    body = _body(commit, serial, actions, tofu)
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return Plan(
        commit, serial, actions, tofu, "sha256:" + hashlib.sha256(text.encode()).hexdigest()
    )


def _body(
    commit: str | None, serial: int, actions: Sequence[PlannedAction], tofu: bool
) -> dict[str, Any]:
    return {
        "format": PLAN_FORMAT,
        "commit": commit,
        "state_serial": serial,
        "trust_on_first_use": tofu,
        "actions": [action_to_json(a) for a in actions],
    }


def plan_to_json(plan: Plan) -> dict[str, Any]:
    return {
        **_body(plan.commit, plan.serial, plan.actions, plan.trust_on_first_use),
        "digest": plan.digest,
        "summary": plan.counts(),
    }


def action_to_json(action: PlannedAction) -> dict[str, Any]:
    change = action.change
    out: dict[str, Any] = {
        "action": verb_of(change),
        "kind": change.kind,
        "name": change.name,
        "risk": action.decision.risk,
        "rule": action.decision.rule,
        "status": action.status,
        "approvals_needed": action.decision.approvals_needed,
        "approved_by": list(action.approved_by),
        "note": action.note or action.decision.note,
    }
    match change:
        case CreateResource():
            out.update(digest=change.digest, path=change.path)
        case UpdateResource():
            out.update(digest=change.digest, old_digest=change.old_digest, path=change.path)
            out["changes"] = [asdict(c) for c in change.changes]
            out["replace"] = change.replace
        case DeleteResource():
            out.update(old_digest=change.old_digest, running=change.running)
        case _:
            assert_never(change)
    return out


def plan_from_json(data: dict[str, Any]) -> Plan:
    """Rebuild a saved plan; the digest must still match its content (no hand edits)."""
    if not isinstance(data, dict):
        raise ValueError("expected a JSON object")
    if data.get("format") != PLAN_FORMAT:
        raise ValueError(f"unsupported plan format {data.get('format')!r}")
    actions = tuple(_action_from_json(a) for a in data["actions"])
    plan = _sealed(data["commit"], data["state_serial"], actions, data["trust_on_first_use"])
    if plan.digest != data.get("digest"):
        raise ValueError("plan digest does not match its content (was the file edited?)")
    return plan


def _action_from_json(a: dict[str, Any]) -> PlannedAction:
    change: Change
    if a["action"] == "create":
        change = CreateResource(a["kind"], a["name"], a["digest"], a["path"])
    elif a["action"] == "update":
        diff = tuple(FieldChange(**c) for c in a["changes"])
        change = UpdateResource(
            a["kind"], a["name"], a["digest"], a["old_digest"], a["path"], diff, a["replace"]
        )
    else:
        change = DeleteResource(a["kind"], a["name"], a["old_digest"], a["running"])
    decision = RiskDecision(a["risk"], a["rule"], a["note"])
    return PlannedAction(change, decision, a["status"], tuple(a["approved_by"]), a["note"])
