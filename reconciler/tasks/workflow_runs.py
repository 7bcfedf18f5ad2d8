"""Workflow runs as step tasks (pure): instantiate, derive a workflow run's status; used by
plan/task_effects, engine/workflow_steps and commands (prompts and `when`: tasks/prompts.py)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from reconciler.tasks.lifecycle import ACTIVE, TaskState
from specs.models import RetryPolicy, TaskSpec, WorkflowSpec, WorkflowStep

S = TaskState

RUN_STATUSES = (
    "PENDING",
    "RUNNING",
    "NEEDS_APPROVAL",
    "BLOCKED",
    "SUCCEEDED",
    "FAILED",
    "CANCELED",
)


@dataclass(frozen=True, slots=True)
class StepRef:
    """What the engine needs to know about a task that is a workflow step."""

    run: str
    step: WorkflowStep


def step_task_name(run: str, step: str) -> str:
    return f"{run}.{step}"


def resolved_inputs(spec: WorkflowSpec, given: Mapping[str, Any]) -> dict[str, Any]:
    """Given inputs plus declared defaults (validation already rejected missing/unknown ones)."""
    values = {k: v.default for k, v in spec.inputs.items() if v.default is not None}
    values.update(given)
    return values


def step_task_spec(run: str, workflow: str, step: WorkflowStep) -> TaskSpec:
    """The task a step becomes. Built unvalidated: `run.step` names are not DNS labels."""
    return TaskSpec.model_construct(
        title=f"{workflow} › {step.id} (run {run})",
        prompt=step.prompt,
        agent=step.agent,
        requires=list(step.requires),
        depends_on=[step_task_name(run, d) for d in step.depends_on],
        inputs={},
        priority=0,
        risk=step.risk,
        approval=step.approval,
        retry=step.retry or RetryPolicy(),
        timeout=step.timeout,
        budget=TaskSpec.model_fields["budget"].get_default(call_default_factory=True),
        max_rework=step.max_rework,
    )


def run_status(states: Sequence[TaskState], canceled: bool = False) -> str:
    """A run's status from its steps' states (a step that `continue`s counts as done)."""
    if canceled:
        return "CANCELED"
    if states and all(s == S.DONE for s in states):
        return "SUCCEEDED"
    if S.FAILED in states:
        return "FAILED"
    if any(s in ACTIVE for s in states):
        return "RUNNING"
    if any(s in (S.NEEDS_APPROVAL, S.REVIEW) for s in states):
        return "NEEDS_APPROVAL"
    if S.BLOCKED in states:
        return "BLOCKED"
    if S.CANCELED in states:
        return "CANCELED"
    return "RUNNING" if S.DONE in states else "PENDING"
