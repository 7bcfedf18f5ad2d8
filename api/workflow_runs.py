"""What the dashboard shows of workflow runs: the list, and one run's steps and DAG.

Pure reads, like `api.work`: the readers of one request in; frozen dataclasses out.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from api.svg import Dag, layout_dag
from api.sync import SyncState, held, sync_state
from api.views import Readers
from reconciler.tasks.workflow_runs import step_task_name
from state.records import ApprovalRow, Event, PendingAction, WorkflowRunRow


@dataclass(frozen=True, slots=True)
class WorkflowRunSummary:
    name: str
    workflow: str
    status: str
    inputs: dict[str, Any]
    steps: dict[str, int]  # step state -> number of steps
    created_at: datetime
    updated_at: datetime
    sync: SyncState  # its WorkflowRun resource against HEAD


def summaries(r: Readers) -> list[WorkflowRunSummary]:
    progress = r.dash.run_progress()
    pending = held(r)
    return [
        WorkflowRunSummary(
            run.name,
            run.workflow,
            run.status,
            run.inputs,
            progress.get(run.name, {}),
            run.created_at,
            run.updated_at,
            sync_state(f"WorkflowRun/{run.name}", pending),
        )
        for run in r.state.workflow_runs()
    ]


@dataclass(frozen=True, slots=True)
class StepView:
    id: str
    task: str
    state: str
    reason: str | None
    attempts: int  # runs of its agent, as on the task page
    agent: str | None
    depends_on: list[str]
    verifies: str | None
    when: str | None


@dataclass(frozen=True, slots=True)
class WorkflowRunDetail:
    run: WorkflowRunRow
    steps: list[StepView]
    dag: Dag
    pending: list[PendingAction]
    approvals: list[ApprovalRow]
    events: list[Event]
    sync: SyncState  # its WorkflowRun resource against HEAD


def detail(r: Readers, name: str) -> WorkflowRunDetail | None:
    found = r.state.workflow_runs([name])
    if not found:
        return None
    run = found[0]
    states = r.dash.step_states(name)
    steps = []
    for spec in run.workflow_spec.get("steps", []):
        sid = str(spec["id"])
        state, reason, attempts = states.get(sid, ("-", None, 0))
        steps.append(
            StepView(
                sid,
                step_task_name(name, sid),
                state,
                reason,
                attempts,
                spec.get("agent"),
                list(spec.get("depends_on", [])),
                spec.get("verifies"),
                spec.get("when"),
            )
        )
    dag = layout_dag([(s.id, s.task, s.state, s.depends_on) for s in steps])
    return WorkflowRunDetail(
        run,
        steps,
        dag,
        [p for p in r.state.pending() if p.key == f"WorkflowRun/{name}"],
        r.dash.approvals(targets=[f"WorkflowRun/{name}"]),
        r.dash.event_page(subject=f"WorkflowRun/{name}", limit=100),
        sync_state(f"WorkflowRun/{name}", held(r)),
    )
