"""Workflow runs as step tasks (pure): instantiate, render prompts, judge `when`, derive a
workflow run's status; used by plan/task_effects, engine/workflow_steps and commands."""

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


class TemplateFailure(Exception):
    """A template could not be rendered with the values known at run time (permanent)."""


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
    )


def template_context(
    run: str,
    workflow: str,
    inputs: Mapping[str, Any],
    steps: Mapping[str, Mapping[str, Any]],
    feedback: str | None,
) -> dict[str, Any]:
    return {
        "inputs": dict(inputs),
        "steps": {k: dict(v) for k, v in steps.items()},
        "run": {"name": run, "workflow": workflow, "inputs": dict(inputs)},
        "feedback": feedback,
    }


def render(text: str, context: Mapping[str, Any]) -> str:
    from jinja2 import TemplateError, UndefinedError

    from specs.templates import environment

    try:
        return environment().from_string(text).render(**context)
    except UndefinedError as exc:
        raise TemplateFailure(f"template variable undefined at run time: {exc.message}") from None
    except TemplateError as exc:
        raise TemplateFailure(f"template failed: {exc}") from None


def when_holds(expression: str, context: Mapping[str, Any]) -> bool:
    from jinja2 import TemplateError, UndefinedError

    from specs.templates import environment

    try:
        # undefined_to_none=False: by default Jinja turns a bare undefined name into None,
        # so a missing output key would silently read as false instead of failing the step
        check = environment().compile_expression(expression, undefined_to_none=False)
        return bool(check(**context))
    except UndefinedError as exc:
        raise TemplateFailure(f"`when` variable undefined at run time: {exc.message}") from None
    except TemplateError as exc:
        raise TemplateFailure(f"`when` failed: {exc}") from None


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
