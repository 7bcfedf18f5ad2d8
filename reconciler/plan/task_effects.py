"""What applied resource changes do to tasks and workflow runs: a pure decision returning values;
plan/apply.py reads its inputs and writes what it returns in apply's transaction.

Every task move goes through the lifecycle table.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import assert_never

from reconciler.plan.actions import (
    Change,
    CreateResource,
    DeleteResource,
    PlannedAction,
    UpdateResource,
)
from reconciler.tasks.lifecycle import RETRYABLE, TERMINAL, transition
from reconciler.tasks.lifecycle import TaskState as S
from reconciler.tasks.workflow_runs import resolved_inputs, step_task_name
from specs.desired import Desired
from specs.models import WorkflowSpec
from state.records import NewEvent, TaskRow, WorkflowRunRow
from state.write_batch import TaskWrite


@dataclass(frozen=True)
class RunStatusSet:
    """A workflow run's status (and retry nonce, when given) set by a change to its spec."""

    name: str
    status: str
    nonce: int | None


@dataclass(frozen=True)
class RunStartWrite:
    """A workflow run pinned anew, its step tasks (name, step id) (re)created in INBOX."""

    row: WorkflowRunRow
    steps: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class TaskEffects:
    """What one apply does to tasks and workflow runs, in the order it is to be written."""

    run_statuses: tuple[RunStatusSet, ...]
    fresh_tasks: tuple[str, ...]
    task_writes: tuple[TaskWrite, ...]  # in order; a second write for one task chains onto it
    events: tuple[NewEvent, ...]
    starts: tuple[RunStartWrite, ...]
    restart_events: tuple[NewEvent, ...]  # written after the starts' upserts


def touched(applied: Sequence[PlannedAction]) -> list[Change]:
    """The applied changes that affect tasks: those of Tasks and WorkflowRuns."""
    return [a.change for a in applied if a.change.kind in ("Task", "WorkflowRun")]


def run_names(changes: Sequence[Change]) -> list[str]:
    """The workflow runs whose stored rows the decision needs."""
    return [c.name for c in changes if c.kind == "WorkflowRun"]


def task_names(changes: Sequence[Change], runs: Mapping[str, WorkflowRunRow]) -> list[str]:
    """The tasks whose stored rows the decision needs: changed Tasks and the runs' steps."""
    steps = [t for r in runs.values() for t in _step_names(r)]
    return [c.name for c in changes if c.kind == "Task"] + steps


def task_effects(
    changes: Sequence[Change],
    desired: Desired,
    rows: Mapping[str, TaskRow],
    runs: Mapping[str, WorkflowRunRow],
    actor: str,
    commit: str | None,
    now: datetime,
) -> TaskEffects:
    """Decide what each applied change does to the stored tasks and workflow runs."""
    fx = _Collector(desired, rows, runs, actor, commit, now)
    for change in changes:
        if change.kind == "Task":
            fx.task_change(change)
        else:
            fx.run_change(change)
    return fx.result()


@dataclass
class _Collector:
    desired: Desired
    rows: Mapping[str, TaskRow]
    runs: Mapping[str, WorkflowRunRow]
    actor: str
    commit: str | None
    now: datetime
    run_statuses: list[RunStatusSet] = field(default_factory=list)
    fresh_tasks: list[str] = field(default_factory=list)
    task_writes: list[TaskWrite] = field(default_factory=list)
    events: list[NewEvent] = field(default_factory=list)
    starts: list[RunStartWrite] = field(default_factory=list)

    def task_change(self, change: Change) -> None:
        row = self.rows.get(change.name)
        match change:
            case CreateResource() if row is None:
                self.fresh_tasks.append(change.name)
            case CreateResource():
                self._move(row, S.INBOX, "declared again in git", reset=True)
            case UpdateResource() if row is not None and row.state in RETRYABLE:
                self._move(row, S.INBOX, "spec changed in git", reset=True)
            case DeleteResource() if row is not None and row.state not in TERMINAL:
                self._move(row, S.CANCELED, "deleted from git")
            case _:
                pass

    def run_change(self, change: Change) -> None:
        name, run = change.name, self.runs.get(change.name)
        match change:
            case CreateResource():
                self._start(name, "workflow_run.started")
            case UpdateResource(replace=True):
                self._cancel_steps(run, "run replaced (inputs changed in git)")
                self._start(name, "workflow_run.replaced")
            case UpdateResource():
                requeued = [t for t in self._steps_of(run) if t.state in RETRYABLE]
                for t in requeued:
                    self._move(t, S.INBOX, "retry requested (spec.retry_nonce)", reset=True)
                nonce = self.desired.docs[f"WorkflowRun/{name}"].spec["retry_nonce"]
                # with nothing requeued the run's status stands (no step would ever move it
                # back from RUNNING, e.g. a nonce bumped on a run that already succeeded)
                status = "RUNNING" if requeued or run is None else run.status
                self.run_statuses.append(RunStatusSet(name, status, nonce))
            case DeleteResource():
                self._cancel_steps(run, "run deleted from git")
                self.run_statuses.append(RunStatusSet(name, "CANCELED", None))
            case _:
                assert_never(change)

    def result(self) -> TaskEffects:
        return TaskEffects(
            tuple(self.run_statuses),
            tuple(self.fresh_tasks),
            tuple(self.task_writes),
            tuple(self.events),
            tuple(self.starts),
            tuple(self._restart_events()),
        )

    def _move(self, row: TaskRow | None, target: S, why: str, reset: bool = False) -> None:
        if row is None or row.state == target:
            return
        t = transition(row.name, row.state, target, self.actor, why, self.cause)
        zero = 0 if reset else None
        # a retried verifier gets its rework rounds back, as with mc retry
        self.task_writes.append(
            t.write(attempts=zero, abandoned=zero, rework=zero, commit=self.commit)
        )

    @property
    def cause(self) -> str:
        """What makes a move's idempotency key unique: the applied commit."""
        return self.commit or self.now.isoformat()

    def _cancel_steps(self, run: WorkflowRunRow | None, why: str) -> None:
        for t in self._steps_of(run):
            if t.state not in TERMINAL:
                self._move(t, S.CANCELED, why)

    def _start(self, name: str, event: str) -> None:
        self.starts.append(_run_start(self.desired, name, self.now))
        self.events.append(NewEvent(self.actor, event, f"WorkflowRun/{name}", {}, self.commit))

    def _steps_of(self, run: WorkflowRunRow | None) -> list[TaskRow]:
        return [self.rows[n] for n in _step_names(run) if n in self.rows] if run else []

    def _restart_events(self) -> list[NewEvent]:
        """A replaced run's steps go CANCELED -> INBOX in the upsert; record those moves."""
        return [
            NewEvent(
                self.actor,
                "task.transition",
                f"Task/{task}",
                {"from": _prior(self.rows[task]), "to": S.INBOX, "reason": "run started anew"},
                self.commit,
            )
            for start in self.starts
            for task, _ in start.steps
            if task in self.rows
        ]


def _prior(row: TaskRow) -> str:
    """The state a replaced step left: canceled by the replace unless it had already ended."""
    return row.state if row.state in TERMINAL else S.CANCELED


def _run_start(desired: Desired, name: str, now: datetime) -> RunStartWrite:
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
    return RunStartWrite(row, tuple((step_task_name(name, s.id), s.id) for s in spec.steps))


def _step_names(run: WorkflowRunRow) -> list[str]:
    return [step_task_name(run.name, s["id"]) for s in run.workflow_spec["steps"]]
