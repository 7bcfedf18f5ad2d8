"""Workflow rules the engine applies to step tasks: prompts, `when`, verification, escalation."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from reconciler.engine.mirror import TaskRec, World
from reconciler.engine.outcome_rules import Settlement
from reconciler.runtime.types import Outcome
from reconciler.tasks.lifecycle import transition
from reconciler.tasks.workflow_runs import (
    TemplateFailure,
    render,
    run_status,
    step_task_name,
    template_context,
    when_holds,
)
from state.records import NewEvent
from state.write_batch import RunStatusWrite, TaskWrite, WriteBatch

ACTOR = "reconciler"


@dataclass(frozen=True, slots=True)
class Prepared:
    """What to do with a step about to be dispatched."""

    prompt: str | None = None  # run it with this rendered prompt
    skip: str | None = None  # `when` was false: done without running
    fail: str | None = None  # a template could not be rendered: permanent failure


def context(world: World, task: TaskRec) -> dict[str, Any]:
    assert task.step is not None
    run = world.runs[task.step.run]
    steps: dict[str, dict[str, Any]] = {}
    for s in run.spec.steps:
        rec = world.tasks.get(step_task_name(run.name, s.id))
        if rec is None or rec.state != "DONE":
            continue
        steps[s.id] = {
            "output": rec.output,
            "outputs": rec.outputs or {},
            "drops": [d.path for d in world.drops.get(rec.name, [])],
        }
    return template_context(run.name, run.workflow, run.inputs, steps, task.feedback)


def prepare(world: World, task: TaskRec) -> Prepared:
    if task.step is None:
        return Prepared(prompt=task.spec.prompt)
    ctx = context(world, task)
    try:
        if task.step.step.when is not None and not when_holds(task.step.step.when, ctx):
            return Prepared(skip=f"skipped: `when: {task.step.step.when}` is false")
        return Prepared(prompt=render(task.spec.prompt, ctx))
    except TemplateFailure as exc:
        return Prepared(fail=f"failed: {exc}")


def judge(
    world: World,
    batch: WriteBatch,
    task: TaskRec,
    outcome: Outcome,
    result: Settlement,
    now: datetime,
) -> Settlement:
    """Adjust a step's settlement: verifiers send work back; exhausted failures escalate."""
    if task.step is None:
        return result
    spec = task.step.step
    if spec.verifies is not None and outcome.status == "retry":
        return _rework(world, batch, task, outcome, result, now)
    if result.target == "FAILED" and spec.on_failure == "escalate":
        return _escalate(batch, task, result.reason)
    return result


def _rework(
    world: World,
    batch: WriteBatch,
    task: TaskRec,
    outcome: Outcome,
    result: Settlement,
    now: datetime,
) -> Settlement:
    assert task.step is not None
    spec = task.step.step
    verifies = spec.verifies
    assert verifies is not None
    feedback = outcome.error or (str(outcome.output) if outcome.output else "rework requested")
    verified = world.tasks.get(step_task_name(task.step.run, verifies))
    if task.rework >= spec.max_rework or verified is None or verified.state != "DONE":
        return _escalate(batch, task, f"rework limit ({spec.max_rework}) reached: {feedback}")
    why = f"sent back by {spec.id} for rework ({task.rework + 1}/{spec.max_rework}): {feedback}"
    t = transition(verified.name, "DONE", "INBOX", ACTOR, why, outcome.run_id)
    batch.add_task(
        TaskWrite(
            verified.name, t.source, t.target, t.key, ACTOR, why, attempts=0, feedback=feedback
        )
    )
    verified.state, verified.reason, verified.attempts = "INBOX", why, 0
    verified.feedback = feedback
    batch.events.append(
        NewEvent(
            ACTOR,
            "workflow.rework",
            f"Task/{verified.name}",
            {"verifier": task.name, "feedback": feedback, "round": task.rework + 1},
        )
    )
    task.rework += 1
    reason = f"waiting for rework of {spec.verifies} ({task.rework}/{spec.max_rework})"
    return dataclasses.replace(
        result, target="INBOX", reason=reason, attempts=result.attempts - 1, next_attempt_at=None
    )


def _escalate(batch: WriteBatch, task: TaskRec, reason: str) -> Settlement:
    assert task.step is not None
    why = f"escalated: {reason.removeprefix('failed: ')}"
    batch.events.append(
        NewEvent(
            ACTOR,
            "escalation",
            f"Task/{task.name}",
            {"run": task.step.run, "step": task.step.step.id, "reason": why},
        )
    )
    return Settlement("BLOCKED", why, task.attempts, task.abandoned, None, "permanent")


def run_updates(world: World, batch: WriteBatch) -> None:
    """Write each run's status when its steps moved it; outputs once it succeeded."""
    for run in world.runs.values():
        if run.status == "CANCELED":
            continue
        states = [world.tasks[n].state for n in run.step_names() if n in world.tasks]
        status = run_status(
            [_effective(world, n, s) for n, s in zip(run.step_names(), states, strict=False)]
        )
        if status == run.status:
            continue
        outputs = _outputs(world, run.name) if status == "SUCCEEDED" else None
        batch.workflow_runs.append(RunStatusWrite(run.name, status, outputs))
        batch.events.append(
            NewEvent(
                ACTOR,
                f"workflow_run.{status.lower()}",
                f"WorkflowRun/{run.name}",
                {"from": run.status},
            )
        )
        run.status = status


def _effective(world: World, name: str, state: str) -> str:
    rec = world.tasks.get(name)
    if (
        state == "FAILED"
        and rec is not None
        and rec.step
        and rec.step.step.on_failure == "continue"
    ):
        return "DONE"
    return state


def _outputs(world: World, run_name: str) -> dict[str, Any]:
    """The run's outputs: what its final steps (those nothing depends on) produced."""
    run = world.runs[run_name]
    depended = {d for s in run.spec.steps for d in s.depends_on}
    out: dict[str, Any] = {}
    for s in run.spec.steps:
        if s.id not in depended:
            rec = world.tasks.get(step_task_name(run_name, s.id))
            out[s.id] = {
                "output": rec.output if rec else None,
                "outputs": (rec.outputs if rec else None) or {},
            }
    return out
