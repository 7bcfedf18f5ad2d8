"""What a sandbox change risks, and which agents a plan says run unconfined: the pure planner
on plain data (desired, applied) -> rows, as in test_planner.py."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any

import pytest
from plan_data import (
    NOW,
    agent,
    applied_of,
    desired_of,
    mission,
    observed_of,
    parsed,
    row,
    with_spec,
)

from reconciler.governance.confinement import CONFINEMENT_FIELDS, Unconfined
from reconciler.plan.build import build_plan
from reconciler.plan.codec import plan_from_json, plan_to_json
from reconciler.plan.observed import observed_from
from specs.desired import Desired

M_AB = mission("alice", "bob")
M = mission()
WRITER = agent()
OFF = "default: sandbox turned off"
CONFINEMENT = "default: agent sandbox/mounts/network/limits"
MISSION_SANDBOX = "default: mission sandbox changed"
AGENT_EXEC = "default: agent command/env"
TOFU = "trust on first use"
LOW = "default: low risk"


def unconfined_mission(*approvers: str, rules: list[dict[str, Any]] | None = None) -> Any:
    return with_spec(mission(*approvers, rules=rules), sandbox="none")


def rule(name: str, decide: str = "LOW", **match: Any) -> dict[str, Any]:
    return {"name": name, "match": match, "decide": decide}


@dataclass(frozen=True)
class Case:
    name: str
    desired: list[dict[str, Any]]
    applied: list[dict[str, Any]] | None
    expected: list[tuple[str, str, str, str, str, str]]


SANDBOX_RULE = rule("opt-out-ok", fields=["spec.sandbox"])
BROAD_THEN_SANDBOX_RULE = mission("alice", rules=[rule("agents-ok", kind=["Agent"]), SANDBOX_RULE])
STRICT_THEN_SANDBOX_RULE = mission(
    "alice", rules=[rule("agents-high", "HIGH", kind=["Agent"]), SANDBOX_RULE]
)

CASES = [
    Case(
        "an agent turning its sandbox off is HIGH",
        desired=[M_AB, agent(sandbox="none")],
        applied=[M_AB, WRITER],
        expected=[("update", "Agent", "writer", "HIGH", OFF, "needs_approval")],
    ),
    Case(
        "the mission turning the sandbox off is HIGH",
        desired=[unconfined_mission("alice", "bob"), WRITER],
        applied=[M_AB, WRITER],
        expected=[("update", "Mission", "m", "HIGH", OFF, "needs_approval")],
    ),
    Case(
        "the mission turning the sandbox back on is HIGH too",
        desired=[M_AB, WRITER],
        applied=[unconfined_mission("alice", "bob"), WRITER],
        expected=[("update", "Mission", "m", "HIGH", MISSION_SANDBOX, "needs_approval")],
    ),
    Case(
        "network: host is HIGH",
        desired=[M_AB, agent(network="host")],
        applied=[M_AB, WRITER],
        expected=[("update", "Agent", "writer", "HIGH", CONFINEMENT, "needs_approval")],
    ),
    Case(
        "a declared mount is HIGH",
        desired=[M_AB, agent(mounts=[{"path": "/srv/data", "mode": "ro"}])],
        applied=[M_AB, WRITER],
        expected=[("update", "Agent", "writer", "HIGH", CONFINEMENT, "needs_approval")],
    ),
    Case(
        "a mount turned writable is HIGH",
        desired=[M_AB, agent(mounts=[{"path": "/srv/data", "mode": "rw"}])],
        applied=[M_AB, agent(mounts=[{"path": "/srv/data"}])],
        expected=[("update", "Agent", "writer", "HIGH", CONFINEMENT, "needs_approval")],
    ),
    Case(
        "changed limits are HIGH",
        desired=[M_AB, agent(limits={"memory": "8Gi"})],
        applied=[M_AB, WRITER],
        expected=[("update", "Agent", "writer", "HIGH", CONFINEMENT, "needs_approval")],
    ),
    Case(
        "an agent's own sandbox: bwrap is a change of its sandbox: HIGH",
        desired=[M_AB, agent(sandbox="bwrap")],
        applied=[M_AB, WRITER],
        expected=[("update", "Agent", "writer", "HIGH", CONFINEMENT, "needs_approval")],
    ),
    Case(
        "a new agent that declares sandbox: none says so",
        desired=[M_AB, WRITER, agent("loose", sandbox="none")],
        applied=[M_AB, WRITER],
        expected=[("create", "Agent", "loose", "HIGH", OFF, "needs_approval")],
    ),
    Case(
        "a new agent with host network names its confinement",
        desired=[M_AB, WRITER, agent("caller", network="host")],
        applied=[M_AB, WRITER],
        expected=[("create", "Agent", "caller", "HIGH", CONFINEMENT, "needs_approval")],
    ),
    Case(
        "a new agent with the defaults is HIGH for its command, as before",
        desired=[M_AB, WRITER, agent("coder")],
        applied=[M_AB, WRITER],
        expected=[("create", "Agent", "coder", "HIGH", AGENT_EXEC, "needs_approval")],
    ),
    Case(
        "first apply trusts an unconfined mission (nothing was turned off), and says so",
        desired=[unconfined_mission("alice"), agent(sandbox="none")],
        applied=None,
        expected=[
            ("create", "Mission", "m", "LOW", TOFU, "apply"),
            ("create", "Agent", "writer", "LOW", TOFU, "apply"),
        ],
    ),
    Case(
        "no approvers applied: declaring the first ones is trusted, turning the sandbox off not",
        desired=[unconfined_mission("alice"), WRITER],
        applied=[M, WRITER],
        expected=[("update", "Mission", "m", "HIGH", OFF, "needs_approval")],
    ),
    Case(
        "no approvers at all: turning the sandbox off cannot be approved",
        desired=[unconfined_mission(), WRITER],
        applied=[M, WRITER],
        expected=[("update", "Mission", "m", "HIGH", OFF, "unapprovable")],
    ),
    Case(
        "a broad LOW rule does not waive turning the sandbox off",
        desired=[
            mission("alice", rules=[rule("agents-ok", kind=["Agent"])]),
            agent(sandbox="none"),
        ],
        applied=[mission("alice", rules=[rule("agents-ok", kind=["Agent"])]), WRITER],
        expected=[("update", "Agent", "writer", "HIGH", OFF, "needs_approval")],
    ),
    Case(
        "a sandbox rule after a broad LOW rule still decides turning the sandbox off",
        desired=[
            BROAD_THEN_SANDBOX_RULE,
            agent(sandbox="none"),
        ],
        applied=[
            BROAD_THEN_SANDBOX_RULE,
            WRITER,
        ],
        expected=[("update", "Agent", "writer", "LOW", "rule 'opt-out-ok'", "apply")],
    ),
    Case(
        "a stricter first rule is not lowered by a later sandbox rule",
        desired=[
            STRICT_THEN_SANDBOX_RULE,
            agent(sandbox="none"),
        ],
        applied=[
            STRICT_THEN_SANDBOX_RULE,
            WRITER,
        ],
        expected=[("update", "Agent", "writer", "HIGH", "rule 'agents-high'", "needs_approval")],
    ),
    Case(
        "a broad LOW rule still lowers other confinement changes",
        desired=[
            mission("alice", rules=[rule("agents-ok", kind=["Agent"])]),
            agent(network="host"),
        ],
        applied=[mission("alice", rules=[rule("agents-ok", kind=["Agent"])]), WRITER],
        expected=[("update", "Agent", "writer", "LOW", "rule 'agents-ok'", "apply")],
    ),
    Case(
        "a rule that names spec.sandbox lowers it",
        desired=[
            mission("alice", rules=[rule("opt-out-ok", fields=["spec.sandbox"])]),
            agent(sandbox="none"),
        ],
        applied=[mission("alice", rules=[rule("opt-out-ok", fields=["spec.sandbox"])]), WRITER],
        expected=[("update", "Agent", "writer", "LOW", "rule 'opt-out-ok'", "apply")],
    ),
    Case(
        "a rule may raise it to RED",
        desired=[
            mission("alice", "bob", rules=[rule("off-red", "RED", fields=["spec.sandbox"])]),
            agent(sandbox="none"),
        ],
        applied=[
            mission("alice", "bob", rules=[rule("off-red", "RED", fields=["spec.sandbox"])]),
            WRITER,
        ],
        expected=[("update", "Agent", "writer", "RED", "rule 'off-red'", "needs_approval")],
    ),
    Case(
        "deleting an unconfined agent is not a sandbox change",
        desired=[M_AB],
        applied=[M_AB, agent(sandbox="none")],
        expected=[("delete", "Agent", "writer", "LOW", LOW, "apply")],
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_sandbox_risk_table(case: Case) -> None:
    plan = build_plan(desired_of(case.desired), observed_of(case.applied), NOW)
    assert [row(a) for a in plan.actions] == case.expected


def test_a_spec_applied_before_the_sandbox_fields_existed_counts_as_their_defaults() -> None:
    """Upgrading mc adds the fields (with their defaults) to every agent: not a HIGH change."""
    applied = applied_of([M_AB, WRITER])
    old = applied["Agent/writer"]
    spec = {k: v for k, v in json.loads(old.spec_json).items() if k not in CONFINEMENT_FIELDS}
    applied["Agent/writer"] = dataclasses.replace(old, spec_json=json.dumps(spec), digest="old")
    observed = observed_from(applied, serial=7, task_states={}, approvals={})
    plan = build_plan(desired_of([M_AB, WRITER]), observed, NOW)
    assert [row(a) for a in plan.actions] == [("update", "Agent", "writer", "LOW", LOW, "apply")]


def test_no_approvers_note_names_the_sandbox_field() -> None:
    plan = build_plan(desired_of([M, agent(sandbox="none")]), observed_of([M, WRITER]), NOW)
    (action,) = plan.actions
    assert action.status == "unapprovable"
    assert action.note is not None
    assert "match: {kind: [Agent], fields: [spec.sandbox]}, decide: LOW" in action.note


# --- which agents the plan calls unconfined ------------------------------------------------


@dataclass(frozen=True)
class UnconfinedCase:
    name: str
    desired: list[dict[str, Any]]
    applied: list[dict[str, Any]] | None
    expected: tuple[Unconfined, ...]


UNCONFINED_CASES = [
    UnconfinedCase(
        "an agent opting out is listed, by the agent",
        desired=[M_AB, agent(sandbox="none")],
        applied=[M_AB, WRITER],
        expected=(Unconfined("writer", "agent"),),
    ),
    UnconfinedCase(
        "the mission opting out lists every agent that inherits it, not one that keeps bwrap",
        desired=[unconfined_mission("alice"), WRITER, agent("kept", sandbox="bwrap")],
        applied=[mission("alice"), WRITER, agent("kept", sandbox="bwrap")],
        expected=(Unconfined("writer", "mission"),),
    ),
    UnconfinedCase(
        "first apply of an unconfined mission lists its agents",
        desired=[unconfined_mission("alice"), WRITER, agent("coder")],
        applied=None,
        expected=(Unconfined("coder", "mission"), Unconfined("writer", "mission")),
    ),
    UnconfinedCase(
        "an unconfined agent the plan does not touch is not repeated",
        desired=[M_AB, agent(sandbox="none"), agent("coder", sandbox="none")],
        applied=[M_AB, agent(sandbox="none"), agent("coder", sandbox="none", role="Old")],
        expected=(Unconfined("coder", "agent"),),
    ),
    UnconfinedCase(
        "a confined plan lists nobody",
        desired=[M_AB, agent(network="host")],
        applied=[M_AB, WRITER],
        expected=(),
    ),
]


@pytest.mark.parametrize("case", UNCONFINED_CASES, ids=[c.name for c in UNCONFINED_CASES])
def test_plan_lists_the_agents_it_unconfines(case: UnconfinedCase) -> None:
    plan = build_plan(desired_of(case.desired), observed_of(case.applied), NOW)
    assert plan.unconfined == case.expected


def _unconfined_plan() -> tuple[Desired, Any]:
    desired = desired_of([M_AB, agent(sandbox="none")])
    return desired, build_plan(desired, observed_of([M_AB, WRITER]), NOW)


def test_unconfined_is_in_the_json_and_the_digest() -> None:
    _, plan = _unconfined_plan()
    body = plan_to_json(plan)
    assert body["unconfined"] == [{"agent": "writer", "by": "agent"}]
    back = plan_from_json(json.loads(json.dumps(body)))
    assert back.unconfined == plan.unconfined and back.digest == plan.digest
    body["unconfined"] = []  # hiding the warning is an edit the digest catches
    with pytest.raises(ValueError):
        plan_from_json(body)


def test_the_digest_of_an_agent_names_its_confinement() -> None:
    """A saved approval of a confined agent does not carry over to its unconfined spec."""
    (confined,) = parsed([WRITER])
    (loose,) = parsed([agent(sandbox="none")])
    assert confined.digest != loose.digest
