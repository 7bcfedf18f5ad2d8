"""Workflow rules for step tasks (pure over the mirror): prompts, `when`, a verifier's verdict,
escalation, the workflow run's status. engine/enact.py asks and writes the answers."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from reconciler.engine.mirror import TaskRec, World
from reconciler.engine.outcome_rules import Settlement
from reconciler.runtime.types import Outcome
from reconciler.tasks.lifecycle import TaskState
from reconciler.tasks.prompts import (
    StepOutputs,
    TemplateFailure,
    render,
    template_context,
    when_holds,
)
from reconciler.tasks.workflow_runs import run_status, step_task_name

S = TaskState
SKIPPED = "skipped: "  # the reason of a step its `when` skipped (DONE without a run)


@dataclass(frozen=True, slots=True)
class Prepared:
    """What to do with a step about to be dispatched."""

    prompt: str | None = None  # run it with this rendered prompt
    skip: str | None = None  # `when` was false: done without running
    fail: str | None = None  # a template could not be rendered: permanent failure


def context(world: World, task: TaskRec) -> dict[str, Any]:
    """What a step's templates see: inputs, the finished steps' outputs (a step that was
    skipped or did not finish is undefined, with the reason), the run, feedback."""
    assert task.step is not None
    run = world.runs[task.step.run]
    finished: dict[str, dict[str, Any]] = {}
    unfinished: dict[str, str] = {}
    for s in run.spec.steps:
        rec = world.tasks.get(step_task_name(run.name, s.id))
        if rec is None:
            unfinished[s.id] = "has not run"
        elif rec.state == S.DONE and _skipped(rec):
            unfinished[s.id] = f"was skipped (its `when: {s.when}` was false)"
        elif rec.state != S.DONE:
            unfinished[s.id] = f"did not finish ({rec.state})"
        else:
            finished[s.id] = {
                "output": rec.output,
                "outputs": rec.outputs or {},
                "drops": [d.path for d in world.drops.get(rec.name, [])],
            }
    steps = StepOutputs(finished, unfinished)
    return template_context(run.name, run.workflow, run.inputs, steps, task.feedback)


def _skipped(rec: TaskRec) -> bool:
    return rec.runs == 0 and (rec.reason or "").startswith(SKIPPED)


def prepare(world: World, task: TaskRec) -> Prepared:
    if task.step is None:
        return Prepared(prompt=task.spec.prompt)
    ctx = context(world, task)
    try:
        if task.step.step.when is not None and not when_holds(task.step.step.when, ctx):
            return Prepared(skip=f"{SKIPPED}`when: {task.step.step.when}` is false")
        return Prepared(prompt=render(task.spec.prompt, ctx))
    except TemplateFailure as exc:
        return Prepared(fail=f"failed: {exc}")


@dataclass(frozen=True, slots=True)
class SendBack:
    """A verifier's verdict: its verified step goes back to the queue with this feedback."""

    verified: str  # the verified step's task
    feedback: str
    reason: str
    round: int


@dataclass(frozen=True, slots=True)
class StepJudgement:
    """A step's settlement after the workflow rules, plus what else they ask for."""

    settlement: Settlement
    send_back: SendBack | None = None
    escalation: str | None = None  # the reason, when the run's failure goes to a person


def judge(world: World, task: TaskRec, outcome: Outcome, result: Settlement) -> StepJudgement:
    """Adjust a step's settlement: verifiers send work back; exhausted failures escalate."""
    if task.step is None:
        return StepJudgement(result)
    spec = task.step.step
    if spec.verifies is not None and outcome.status == "retry":
        return _rework(world, task, outcome, result)
    if result.target == S.FAILED and spec.on_failure == "escalate":
        return _escalate(task, result.reason)
    return StepJudgement(result)


def _rework(world: World, task: TaskRec, outcome: Outcome, result: Settlement) -> StepJudgement:
    """A verifier's `retry` is a verdict on the verified step, not a failure of the verifier:
    the verifier waits (its try not counted), the verified step is queued again."""
    assert task.step is not None
    spec = task.step.step
    verifies = spec.verifies
    assert verifies is not None
    feedback = outcome.error or (str(outcome.output) if outcome.output else "rework requested")
    verified = world.tasks.get(step_task_name(task.step.run, verifies))
    if task.rework >= spec.max_rework or verified is None or verified.state != S.DONE:
        return _escalate(task, f"rework limit ({spec.max_rework}) reached: {feedback}")
    round_ = task.rework + 1
    why = f"sent back by {spec.id} for rework ({round_}/{spec.max_rework}): {feedback}"
    reason = f"waiting for rework of {verifies} ({round_}/{spec.max_rework})"
    settlement = dataclasses.replace(
        result,
        target=S.INBOX,
        reason=reason,
        attempts=result.attempts - 1,
        next_attempt_at=None,
        error_class="verdict",
    )
    return StepJudgement(settlement, SendBack(verified.name, feedback, why, round_))


def _escalate(task: TaskRec, reason: str) -> StepJudgement:
    why = f"escalated: {reason.removeprefix('failed: ')}"
    return StepJudgement(
        Settlement(S.BLOCKED, why, task.attempts, task.abandoned, None, "permanent"),
        escalation=why,
    )


@dataclass(frozen=True, slots=True)
class RunStatusChange:
    """A workflow run whose status its steps moved; outputs once it succeeded."""

    run: str
    status: str
    previous: str
    outputs: dict[str, Any] | None


def run_status_changes(world: World) -> list[RunStatusChange]:
    """Workflow runs whose steps moved them to another status. A run that has started never
    reads as PENDING again (a step requeued for a retry is still the run at work)."""
    changes = []
    for run in world.runs.values():
        if run.status == "CANCELED":
            continue
        names = [n for n in run.step_names() if n in world.tasks]
        status = run_status([world.tasks[n].as_dependency() for n in names])
        if status == "PENDING" and run.status != "PENDING":
            status = "RUNNING"
        if status == run.status:
            continue
        outputs = _outputs(world, run.name) if status == "SUCCEEDED" else None
        changes.append(RunStatusChange(run.name, status, run.status, outputs))
    return changes


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
