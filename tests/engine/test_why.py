"""engine/why.py over plain data: the category and detail each waiting task gets, asked of the
scheduler itself (a table: the world, the task, the answer)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from reconciler.engine.mirror import AgentRec, TaskRec, World
from reconciler.engine.why import why
from reconciler.governance.approvals import GivenApproval
from reconciler.tasks.lifecycle import TaskState
from specs.models import AgentSpec, MissionSpec, TaskSpec

NOW = datetime(2026, 11, 29, 12, 0, 0)
S = TaskState


def agent(name: str = "w", running: int = 0, **spec: Any) -> AgentRec:
    rec = AgentRec(
        name, AgentSpec(command=["true"], **spec), "sha256:a", spec.get("status", "active")
    )
    rec.running = running
    return rec


def task(name: str, state: TaskState = S.INBOX, **spec: Any) -> TaskRec:
    spec.setdefault("agent", "w")
    fields = {k: spec.pop(k) for k in ("next_attempt_at", "reason", "review_since") if k in spec}
    rec = TaskRec(
        name,
        TaskSpec(title=name, **spec),
        f"sha256:{name}",
        state,
        fields.get("reason"),
        None,
        0,
        0,
        fields.get("next_attempt_at"),
        NOW - timedelta(hours=1),
    )
    rec.review_since = fields.get("review_since")
    return rec


def world(*tasks: TaskRec, agents: tuple[AgentRec, ...] = (), **mission: Any) -> World:
    spec = {"approvers": [{"name": "alice"}], **mission}
    return World(
        "m",
        MissionSpec.model_validate(spec),
        None,
        {t.name: t for t in tasks},
        {a.name: a for a in (agents or (agent(),))},
        NOW.date(),
        {},
        {},
        approvers=frozenset({"alice"}),
    )


def changes(target: str, digest: str) -> GivenApproval:
    return GivenApproval(target, digest, "alice", "request_changes", "git", NOW, "fix it")


LATER = NOW + timedelta(minutes=5)
CASES: list[tuple[str, World, str, str, datetime | None]] = [
    ("ready", world(task("t")), "ready", "dispatches to agent w", None),
    (
        "capacity",
        world(task("t"), agents=(agent(running=1, concurrency=1),)),
        "capacity",
        "every agent that could take it is busy (w 1/1)",
        None,
    ),
    ("no agent", world(task("t", agent="ghost")), "no-agent", "no declared agent", None),
    (
        "backoff",
        world(task("t", next_attempt_at=LATER)),
        "backoff",
        "next attempt at 2026-11-29 12:05:00 UTC",
        LATER,
    ),
    ("mission paused", world(task("t"), mode="paused"), "mission", "(mode: paused)", None),
    (
        "dependency waiting",
        world(task("a", S.IN_PROGRESS), task("t", depends_on=["a"])),
        "dependency",
        "waiting for a (IN_PROGRESS)",
        None,
    ),
    (
        "gated",
        world(task("t", approval="before")),
        "approval",
        "0/1 given (nobody yet); gate: `approval: before` in its spec (risk LOW by default:"
        " low risk); approvers: alice",
        None,
    ),
    (
        "review",
        world(task("t", S.REVIEW, approval="after", review_since=NOW - timedelta(minutes=1))),
        "review",
        "waiting for review of its result: 0/1 given (nobody yet); gate: `approval: after`",
        None,
    ),
    (
        "gated by its risk",
        world(task("t", risk="HIGH")),
        "approval",
        "0/1 given (nobody yet); gate: risk HIGH by task risk; approvers: alice",
        None,
    ),
    (
        "blocked by its agent",
        world(task("t", S.BLOCKED, reason="agent: needs a password")),
        "person",
        "agent: needs a password; `mc retry` requeues it once fixed",
        None,
    ),
    ("running", world(task("t", S.IN_PROGRESS)), "running", "running on agent", None),
    (
        "dependency run by its only agent",  # both hold it: the dependency is named
        world(
            task("a", S.IN_PROGRESS, agent="slow"),
            task("t", agent="slow", depends_on=["a"]),
            agents=(agent("slow", running=1, concurrency=1), agent("other", concurrency=2)),
        ),
        "dependency",
        "waiting for a (IN_PROGRESS)",
        None,
    ),
    (
        "capacity names only the agents that could take it",
        world(
            task("a", S.DONE, agent="slow"),
            task("t", agent="slow", depends_on=["a"]),
            agents=(agent("slow", running=1, concurrency=1), agent("other", concurrency=2)),
        ),
        "capacity",
        "every agent that could take it is busy (slow 1/1)",
        None,
    ),
    (
        "backoff before a dependency",
        world(
            task("a", S.IN_PROGRESS),
            task("t", depends_on=["a"], next_attempt_at=LATER),
        ),
        "backoff",
        "next attempt at 2026-11-29 12:05:00 UTC",
        LATER,
    ),
]


@pytest.mark.parametrize(
    ("case", "w", "category", "detail", "until"), CASES, ids=[c[0] for c in CASES]
)
def test_why(case: str, w: World, category: str, detail: str, until: datetime | None) -> None:
    found = why(w, w.tasks["t"], NOW)
    assert (found.category, found.until) == (category, until), found
    assert detail in found.detail, found.detail
    if category == "capacity":
        assert "other" not in found.detail


def test_changes_requested_in_review_send_the_task_back_next() -> None:
    w = world(task("t", S.REVIEW, approval="after", review_since=NOW - timedelta(minutes=1)))
    w.approvals["Task/t"] = (changes("Task/t", "sha256:t"),)
    found = why(w, w.tasks["t"], NOW)
    assert (found.category, found.detail) == (
        "ready",
        "alice asked for changes; back to its agent at the next tick",
    )


def test_a_ready_task_with_nothing_driving_the_mission_says_what_runs_it() -> None:
    w = world(task("t"))
    found = why(w, w.tasks["t"], NOW, driven=False)
    assert (found.category, found.detail) == (
        "ready",
        "runs when `mc apply` or `mc serve` drives the mission (agent w is free)",
    )
