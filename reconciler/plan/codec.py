"""The plan's one JSON shape and its digest; used by the planner, mc plan/apply and serve."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any, assert_never

from reconciler.governance.confinement import (
    Unconfined,
    unconfined_from_json,
    unconfined_to_json,
)
from reconciler.governance.policy import RiskDecision
from reconciler.governance.trust_chain import TrustBasis, basis_from_json, basis_to_json
from reconciler.plan.actions import (
    Change,
    CreateResource,
    DeleteResource,
    Plan,
    PlannedAction,
    UpdateResource,
    verb_of,
)
from reconciler.plan.diff import FieldChange

PLAN_FORMAT = 3  # 2: `unconfined`; 3: `trust`


def sealed(
    commit: str | None,
    serial: int,
    actions: tuple[PlannedAction, ...],
    tofu: bool,
    unconfined: tuple[Unconfined, ...] = (),
    trust: TrustBasis | None = None,
) -> Plan:
    """The plan with its digest over the canonical JSON body."""
    body = _body(commit, serial, actions, tofu, unconfined, trust)
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    digest = "sha256:" + hashlib.sha256(text.encode()).hexdigest()
    return Plan(commit, serial, actions, tofu, digest, unconfined, trust)


def _body(
    commit: str | None,
    serial: int,
    actions: Sequence[PlannedAction],
    tofu: bool,
    unconfined: Sequence[Unconfined],
    trust: TrustBasis | None,
) -> dict[str, Any]:
    return {
        "format": PLAN_FORMAT,
        "commit": commit,
        "state_serial": serial,
        "trust_on_first_use": tofu,
        "actions": [action_to_json(a) for a in actions],
        "unconfined": unconfined_to_json(unconfined),
        "trust": basis_to_json(trust),
    }


def plan_to_json(plan: Plan) -> dict[str, Any]:
    return {
        **_body(
            plan.commit,
            plan.serial,
            plan.actions,
            plan.trust_on_first_use,
            plan.unconfined,
            plan.trust,
        ),
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
    unconfined = unconfined_from_json(data["unconfined"])
    trust = basis_from_json(data["trust"])
    plan = sealed(
        data["commit"], data["state_serial"], actions, data["trust_on_first_use"], unconfined, trust
    )
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
