"""Apply a reviewed plan in one transaction; called via plan/pipeline.py (mc apply, serve)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import assert_never

from reconciler.plan.actions import (
    CreateResource,
    DeleteResource,
    Plan,
    PlannedAction,
    UpdateResource,
    verb_of,
)
from reconciler.plan.governed import current_targets, record_git_approvals
from reconciler.plan.task_effects import run_names, task_effects, task_names, touched
from specs.desired import Desired
from specs.errors import MCError
from state.records import ApprovalRow, NewEvent
from state.store import PendingWrite, ResourceWrite, State, StateWriter
from state.write_batch import WriteBatch, write_batch


class StalePlan(MCError):
    """The world moved since the plan was made; applying it would not do what was reviewed."""


@dataclass(frozen=True)
class ApplyResult:
    applied: tuple[PlannedAction, ...]
    pending: tuple[PlannedAction, ...]
    refused: tuple[PlannedAction, ...]
    serial: int


def check_fresh(plan: Plan, head: str | None, serial: int) -> None:
    if plan.commit is None:
        raise StalePlan("this plan was made from the work tree (--worktree); commit and plan again")
    if head != plan.commit:
        raise StalePlan(
            f"stale plan: made from commit {plan.commit[:12]}, but HEAD is now"
            f" {(head or 'nothing')[:12]}; run `mc plan` again"
        )
    if serial != plan.serial:
        raise StalePlan(
            f"stale plan: made against state serial {plan.serial}, but the state is now at"
            f" {serial}; run `mc plan` again"
        )


def apply_plan(
    plan: Plan,
    desired: Desired,
    state: State,
    now: datetime,
    actor: str,
    approvals: Sequence[ApprovalRow] = (),
    current: Mapping[str, tuple[str, datetime]] | None = None,
) -> ApplyResult:
    """Apply every action the plan allows; record the rest as pending approvals.

    `current` is what planning found of each approvable target's digest and since when
    (Observed.current); None records each desired digest as new from `now` where it changed.
    """
    writer = state.writer
    check_fresh(plan, desired.commit, writer.serial())
    applied = [a for a in plan.actions if a.status == "apply"]
    pending = [a for a in plan.actions if a.status == "needs_approval"]
    refused = [a for a in plan.actions if a.status in ("denied", "unapprovable")]
    writes = [_resource_write(a, desired, actor, plan.commit) for a in applied]
    upserts = [w for w, _ in writes if isinstance(w, ResourceWrite)]
    deletes = [w for w, _ in writes if isinstance(w, tuple)]
    events = [e for _, e in writes] + [_held(a, actor, plan.commit) for a in pending + refused]
    waiting = [
        PendingWrite(
            a.key, verb_of(a.change), a.target_digest, a.decision.risk, a.note or a.decision.rule
        )
        for a in pending + refused
    ]
    with state.db.transaction():
        writer.upsert_resources(upserts, plan.commit, now)
        writer.delete_resources(deletes)
        _write_task_effects(writer, applied, desired, actor, plan.commit, now)
        record_git_approvals(writer, list(approvals), actor, plan.commit, now)
        writer.record_target_digests(
            current
            if current is not None
            else current_targets(writer.target_digests_since(), desired, now)
        )
        writer.replace_pending(waiting, plan.commit, now)
        writer.append_events(events, now)
        serial = writer.bump_serial(len(applied)) if applied else writer.serial()
        if plan.commit:
            writer.set_meta("applied_commit", plan.commit)
        # a rule arrives with the commit that adds it: dispatch gates judge by it at once
        writer.set_meta("proposed_policy", json.dumps(desired.mission.spec.get("policy") or {}))
    return ApplyResult(tuple(applied), tuple(pending), tuple(refused), serial)


def _resource_write(
    action: PlannedAction, desired: Desired, actor: str, commit: str | None
) -> tuple[ResourceWrite | tuple[str, str], NewEvent]:
    """An applied action's row write (an upsert, or the key to delete) and its event."""
    change = action.change
    data: dict[str, object] = {"rule": action.decision.rule, "risk": action.decision.risk}
    match change:
        case CreateResource() | UpdateResource():
            doc = desired.docs[f"{change.kind}/{change.name}"]
            if doc.digest != change.digest:  # the commit is immutable; this is a bug guard
                raise StalePlan(f"{doc.key}: content differs from the plan; plan again")
            write = ResourceWrite(doc.kind, doc.name, doc.labels, doc.spec, doc.digest, doc.path)
            verb = "created" if isinstance(change, CreateResource) else "updated"
            if action.approved_by:
                data["approved_by"] = list(action.approved_by)
            return write, NewEvent(actor, f"resource.{verb}", doc.key, data, commit)
        case DeleteResource():
            event = NewEvent(actor, "resource.deleted", action.key, data, commit)
            return (change.kind, change.name), event
        case _:
            assert_never(change)


def _held(action: PlannedAction, actor: str, commit: str | None) -> NewEvent:
    """The event of an action the plan holds back (pending approval, denied, unapprovable)."""
    data = {"risk": action.decision.risk, "rule": action.decision.rule, "status": action.status}
    return NewEvent(actor, f"plan.{action.status}", action.key, data, commit)


def _write_task_effects(
    writer: StateWriter,
    applied: Sequence[PlannedAction],
    desired: Desired,
    actor: str,
    commit: str | None,
    now: datetime,
) -> None:
    """Read what task_effects needs, and write what it decides (inside apply's transaction)."""
    changes = touched(applied)
    runs = {r.name: r for r in writer.workflow_runs(run_names(changes))}
    rows = {t.name: t for t in writer.tasks(task_names(changes, runs))}
    fx = task_effects(changes, desired, rows, runs, actor, commit, now)
    for status in fx.run_statuses:
        writer.set_workflow_run(status.name, status.status, status.nonce, now)
    writer.create_tasks(fx.fresh_tasks, now)
    batch = WriteBatch(events=list(fx.events))
    for write in fx.task_writes:
        batch.add_task(write)
    write_batch(writer.db, batch, now)
    for start in fx.starts:
        writer.start_workflow_run(start.row, start.steps, now)
    writer.append_events(fx.restart_events, now)
