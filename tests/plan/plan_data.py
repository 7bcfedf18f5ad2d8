"""Missions as plain data for the planner tests: documents, desired and observed, table rows."""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import yaml

from reconciler.governance.approvals import GivenApproval
from reconciler.plan.actions import PlannedAction, verb_of
from reconciler.plan.observed import Observed, observed_from
from specs.desired import Desired, build_desired
from specs.loader import ParsedDoc, parse_file
from state.records import AppliedResource

NOW = datetime(2026, 11, 23, 12, 0, 0)
DIRS = {"Agent": "agents", "Task": "tasks", "Workflow": "workflows", "WorkflowRun": "runs"}

# --- documents as plain data --------------------------------------------------------------


def doc(
    kind: str, name: str, spec: dict[str, Any], labels: dict[str, str] | None = None
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, **({"labels": labels} if labels else {})}
    return {"apiVersion": "mc/v1", "kind": kind, "metadata": meta, "spec": spec}


def mission(
    *approvers: str, rules: list[dict[str, Any]] | None = None, ttl: str = "24h", name: str = "m"
) -> dict[str, Any]:
    people = [{"name": a} for a in approvers]
    policy = {"approval_ttl": ttl, "rules": rules or []}
    return doc("Mission", name, {"approvers": people, "policy": policy})


def agent(
    name: str = "writer", command: tuple[str, ...] = ("python", "w.py"), **spec: Any
) -> dict[str, Any]:
    return doc("Agent", name, {"capabilities": ["write"], "command": list(command), **spec})


def task(name: str = "draft", agent: str = "writer", **spec: Any) -> dict[str, Any]:
    return doc("Task", name, {"title": name.title(), "agent": agent, **spec})


def workflow(name: str = "flow") -> dict[str, Any]:
    return doc("Workflow", name, {"steps": [{"id": "one", "agent": "writer"}]})


def with_spec(d: dict[str, Any], **changes: Any) -> dict[str, Any]:
    out = copy.deepcopy(d)
    out["spec"].update(changes)
    return out


def parsed(docs: list[dict[str, Any]]) -> list[ParsedDoc]:
    """Each document through the real loader, from YAML text, in the file it belongs in."""
    out: list[ParsedDoc] = []
    for d in docs:
        kind, name = d["kind"], d["metadata"]["name"]
        path = "mission.yaml" if kind == "Mission" else f"{DIRS[kind]}/{name}.yaml"
        found, problems = parse_file(path, yaml.safe_dump(d).encode())
        assert not problems, problems
        out.extend(found)
    return out


def desired_of(docs: list[dict[str, Any]], commit: str = "c" * 40) -> Desired:
    return build_desired(commit, parsed(docs), lambda path, index, loc: None)


def applied_of(docs: list[dict[str, Any]]) -> dict[str, AppliedResource]:
    return {
        p.key: AppliedResource(
            p.kind, p.name, p.digest, 1, json.dumps(p.spec), json.dumps(p.labels), p.path, "a" * 40
        )
        for p in parsed(docs)
    }


def observed_of(
    docs: list[dict[str, Any]] | None,
    task_states: dict[str, str] | None = None,
    approvals: Mapping[str, tuple[GivenApproval, ...]] | None = None,
    serial: int = 7,
) -> Observed:
    return observed_from(
        applied_of(docs or []),
        serial=serial if docs else 0,
        task_states=task_states or {},
        approvals=approvals or {},
    )


def row(action: PlannedAction) -> tuple[str, str, str, str, str, str]:
    verdict = action.decision
    return (
        verb_of(action.change),
        action.change.kind,
        action.change.name,
        verdict.risk,
        verdict.rule,
        action.status,
    )
