"""What applied resource changes do to tasks and workflow runs; called by plan/apply.py.

Every task move goes through the lifecycle table; runs inside apply's transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from reconciler.plan.actions import CreateResource, DeleteResource, PlannedAction, UpdateResource
from reconciler.tasks.lifecycle import RETRYABLE, TERMINAL, transition
from reconciler.tasks.lifecycle import TaskState as S
from reconciler.tasks.workflow_runs import resolved_inputs, step_task_name
from specs.desired import Desired
from specs.models import WorkflowSpec
from state.records import NewEvent, TaskRow, WorkflowRunRow
from state.store import StateWriter
from state.write_batch import WriteBatch, write_batch


def apply_effects(
    writer: StateWriter,
    applied: Sequence[PlannedAction],
    desired: Desired,
    actor: str,
    commit: str | None,
    now: datetime,
) -> None:
    batch = WriteBatch()
    touched = [a.change for a in applied if a.change.kind in ("Task", "WorkflowRun")]
    runs = {
        r.name: r
        for r in writer.workflow_runs([c.name for c in touched if c.kind == "WorkflowRun"])
    }
    step_names = [t for r in runs.values() for t in _step_names(r)]
    rows = {
        t.name: t for t in writer.tasks([c.name for c in touched if c.kind == "Task"] + step_names)
    }
    fresh_tasks: list[str] = []
    starts: list[tuple[WorkflowRunRow, list[tuple[str, str]]]] = []
    cause = commit or now.isoformat()

    def move(row: TaskRow | None, target: S, why: str, reset: bool = False) -> None:
        if row is None or row.state == target:
            return
        t = transition(row.name, row.state, target, actor, why, cause)
        zero = 0 if reset else None
        # a retried verifier gets its rework rounds back, as with mc retry
        batch.add_task(t.write(attempts=zero, abandoned=zero, rework=zero, commit=commit))

    for change in touched:
        match change:
            case CreateResource(kind="Task", name=name):
                if name in rows:
                    move(rows[name], S.INBOX, "declared again in git", reset=True)
                else:
                    fresh_tasks.append(name)
            case UpdateResource(kind="Task", name=name):
                row = rows.get(name)
                if row is not None and row.state in RETRYABLE:
                    move(row, S.INBOX, "spec changed in git", reset=True)
            case DeleteResource(kind="Task", name=name):
                row = rows.get(name)
                if row is not None and row.state not in TERMINAL:
                    move(row, S.CANCELED, "deleted from git")
            case CreateResource(kind="WorkflowRun", name=name):
                starts.append(_start(desired, name, now))
                batch.events.append(
                    NewEvent(actor, "workflow_run.started", f"WorkflowRun/{name}", {}, commit)
                )
            case UpdateResource(kind="WorkflowRun", name=name, replace=True):
                for t in _steps_of(rows, runs.get(name)):
                    if t.state not in TERMINAL:
                        move(t, S.CANCELED, "run replaced (inputs changed in git)")
                starts.append(_start(desired, name, now))
                batch.events.append(
                    NewEvent(actor, "workflow_run.replaced", f"WorkflowRun/{name}", {}, commit)
                )
            case UpdateResource(kind="WorkflowRun", name=name):
                run = runs.get(name)
                requeued = [t for t in _steps_of(rows, run) if t.state in RETRYABLE]
                for t in requeued:
                    move(t, S.INBOX, "retry requested (spec.retry_nonce)", reset=True)
                doc = desired.docs[f"WorkflowRun/{name}"]
                # with nothing requeued the run's status stands (no step would ever move it
                # back from RUNNING, e.g. a nonce bumped on a run that already succeeded)
                status = "RUNNING" if requeued or run is None else run.status
                writer.set_workflow_run(name, status, doc.spec["retry_nonce"], now)
            case DeleteResource(kind="WorkflowRun", name=name):
                for t in _steps_of(rows, runs.get(name)):
                    if t.state not in TERMINAL:
                        move(t, S.CANCELED, "run deleted from git")
                writer.set_workflow_run(name, "CANCELED", None, now)
            case _:
                pass
    writer.create_tasks(fresh_tasks, now)
    write_batch(writer.db, batch, now)
    for run_row, steps in starts:
        writer.start_workflow_run(run_row, steps, now)
    _announce_restarts(writer, starts, rows, actor, commit, now)


def _announce_restarts(
    writer: StateWriter,
    starts: Sequence[tuple[WorkflowRunRow, list[tuple[str, str]]]],
    rows: dict[str, TaskRow],
    actor: str,
    commit: str | None,
    now: datetime,
) -> None:
    """A replaced run's steps go CANCELED -> INBOX in the upsert; record those transitions."""
    events = [
        NewEvent(
            actor,
            "task.transition",
            f"Task/{task}",
            {"from": _prior(rows[task]), "to": S.INBOX, "reason": "run started anew"},
            commit,
        )
        for _, steps in starts
        for task, _ in steps
        if task in rows
    ]
    writer.append_events(events, now)


def _prior(row: TaskRow) -> str:
    """The state a replaced step left: canceled by the replace unless it had already ended."""
    return row.state if row.state in TERMINAL else S.CANCELED


def _start(
    desired: Desired, name: str, now: datetime
) -> tuple[WorkflowRunRow, list[tuple[str, str]]]:
    doc = desired.docs[f"WorkflowRun/{name}"]
    wf = desired.docs[f"Workflow/{doc.spec['workflow']}"]
    spec = WorkflowSpec.model_validate(wf.spec)
    inputs = resolved_inputs(spec, doc.spec["inputs"])
    row = WorkflowRunRow(
        name,
        wf.name,
        wf.digest,
        wf.spec,
        inputs,
        doc.spec["retry_nonce"],
        "PENDING",
        None,
        now,
        now,
    )
    return row, [(step_task_name(name, s.id), s.id) for s in spec.steps]


def _step_names(run: WorkflowRunRow) -> list[str]:
    return [step_task_name(run.name, s["id"]) for s in run.workflow_spec["steps"]]


def _steps_of(rows: dict[str, TaskRow], run: WorkflowRunRow | None) -> list[TaskRow]:
    return [rows[n] for n in _step_names(run) if n in rows] if run else []
