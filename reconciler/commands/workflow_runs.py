"""`mc run`, `mc workflows`, `mc run-status` and `mc retry`; called by cli/workflows.py."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import yaml

from reconciler.commands.context import MissionContext
from reconciler.repo.git import GitError, run_git
from reconciler.tasks.lifecycle import RETRYABLE, TaskState, transition
from reconciler.tasks.workflow_runs import step_task_name
from specs import yaml12
from specs.errors import MCError
from specs.fields import NAME_PATTERN
from specs.loader import load_value
from state.records import NewEvent, TaskRow, WorkflowRunRow
from state.store import State, StateReader
from state.write_batch import WriteBatch, write_batch


@dataclass(frozen=True)
class NewRun:
    name: str
    path: str
    commit: str | None


def parse_inputs(pairs: list[str]) -> dict[str, Any]:
    """`-i key=value`: values read as in a mission file (YAML 1.2 core), so numbers and
    booleans keep their type and `NO` stays text."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise MCError(f"-i {pair!r}: expected key=value")
        try:
            out[key] = load_value(value) if value else ""
        except yaml.YAMLError as exc:
            raise MCError(f"-i {pair!r}: not a YAML value ({_problem(exc)})") from None
    return out


def _problem(exc: yaml.YAMLError) -> str:
    return str(getattr(exc, "problem", None) or exc)


def start_run(
    ctx: MissionContext, workflow: str, inputs: dict[str, Any], name: str | None, commit: bool
) -> NewRun:
    """Write runs/<name>.yaml, check the whole mission with it, and commit just that file."""
    name = name or _default_name(workflow, ctx.clock())
    if not re.match(NAME_PATTERN, name) or len(name) > 63:
        raise MCError(f"invalid run name {name!r}; use lowercase letters, digits and '-'")
    rel = f"runs/{name}.yaml"
    path = ctx.repo.root / rel
    if path.exists():
        raise MCError(f"{rel} already exists; choose another --name")
    doc = {
        "apiVersion": "mc/v1",
        "kind": "WorkflowRun",
        "metadata": {"name": name},
        "spec": {"workflow": workflow, "inputs": inputs},
    }
    path.parent.mkdir(exist_ok=True)
    path.write_text(yaml12.dump(doc))
    try:
        ctx.repo.desired(None)  # the work tree with the new file: every problem, file and line
    except MCError:
        path.unlink()
        raise
    sha = _commit(ctx, rel, f"Run workflow {workflow} as {name} (mc run)") if commit else None
    return NewRun(name, rel, sha)


def _default_name(workflow: str, now: datetime) -> str:
    return f"{workflow}-{now:%Y%m%d-%H%M%S}"[:63].strip("-")


def _commit(ctx: MissionContext, rel: str, message: str) -> str:
    """Commit the one file through repo/git.py (no hook or filter of the repo's runs)."""
    try:
        run_git(ctx.repo.root, "add", "--", rel)
        run_git(ctx.repo.root, "commit", "-q", "-m", message, "--", rel)
        return run_git(ctx.repo.root, "rev-parse", "HEAD") or ""
    except GitError as exc:
        raise MCError(f"committing {rel} failed: {exc}") from None


@dataclass(frozen=True)
class StepStatus:
    id: str
    task: str
    state: str
    reason: str | None
    attempts: int  # runs of the step's agent (StateReader.run_counts), as every surface shows
    rework: int
    depends_on: list[str]
    agent: str | None
    output: Any


@dataclass(frozen=True)
class RunStatus:
    run: WorkflowRunRow
    steps: list[StepStatus]


def run_status(reader: StateReader, name: str) -> RunStatus:
    """A workflow run and each of its steps' state; MCError when it was never applied."""
    found = reader.workflow_runs([name])
    if not found:
        raise MCError(f"no workflow run {name!r} has been applied (see `mc runs -w`)")
    run = found[0]
    names = [step_task_name(name, s["id"]) for s in run.workflow_spec["steps"]]
    rows = {t.name: t for t in reader.tasks(names)}
    attempts = reader.run_counts(names)
    steps = []
    for spec in run.workflow_spec["steps"]:
        row = rows.get(step_task_name(name, spec["id"]))
        steps.append(
            StepStatus(
                spec["id"],
                step_task_name(name, spec["id"]),
                row.state if row else "-",
                row.reason if row else None,
                attempts.get(step_task_name(name, spec["id"]), 0),
                row.rework if row else 0,
                list(spec["depends_on"]),
                row.agent if row else None,
                row.output if row else None,
            )
        )
    return RunStatus(run, steps)


def workflows(reader: StateReader) -> list[tuple[str, dict[str, Any], int]]:
    """Applied workflows: name, spec, number of runs."""
    resources = reader.resources()
    runs = reader.workflow_runs()
    counts: dict[str, int] = {}
    for r in runs:
        counts[r.workflow] = counts.get(r.workflow, 0) + 1
    return [
        (r.name, r.spec, counts.get(r.name, 0))
        for r in sorted(resources.values(), key=lambda r: r.name)
        if r.kind == "Workflow"
    ]


def retry_workflow_run(state: State, target: str, actor: str, now: datetime) -> list[str]:
    """`mc retry RUN[.STEP]`: FAILED or BLOCKED steps back to INBOX, recorded as events."""
    run_name, _, step_id = target.partition(".")
    found = state.reader.workflow_runs([run_name])
    if not found:
        raise MCError(f"no workflow run {run_name!r} (see `mc runs -w`)")
    if found[0].status == "CANCELED":  # its file was deleted: git no longer asks for it
        raise MCError(f"run {run_name} was canceled (deleted from git); declare it again to run it")
    ids = [s["id"] for s in found[0].workflow_spec["steps"]]
    if step_id and step_id not in ids:
        raise MCError(f"run {run_name} has no step {step_id!r} (steps: {', '.join(ids)})")
    names = [step_task_name(run_name, s) for s in ([step_id] if step_id else ids)]
    rows = [t for t in state.reader.tasks(names) if t.state in RETRYABLE]
    if not rows:
        raise MCError(f"nothing to retry in {target}: no step is FAILED or BLOCKED")
    batch = WriteBatch()
    for row in rows:
        _requeue(batch, row, actor, now)
    batch.events.append(
        NewEvent(
            actor, "retry.requested", f"WorkflowRun/{run_name}", {"steps": [r.name for r in rows]}
        )
    )
    with state.db.transaction():
        write_batch(state.db, batch, now)
        state.writer.set_workflow_run(run_name, "RUNNING", None, now)
    return [r.name for r in rows]


def retry_task(state: State, name: str, actor: str, now: datetime) -> list[str]:
    """`mc retry TASK`: a FAILED or BLOCKED task back to INBOX with fresh attempts and rework
    rounds, recorded as an event (the GitOps way stays a changed spec)."""
    rows = state.reader.tasks([name])
    if not rows:
        raise MCError(f"no task or workflow run named {name!r} (see `mc tasks`, `mc runs -w`)")
    row = rows[0]
    if row.state not in RETRYABLE:
        raise MCError(f"task {name} is {row.state}; only FAILED or BLOCKED tasks are retried")
    batch = WriteBatch()
    _requeue(batch, row, actor, now)
    batch.events.append(
        NewEvent(
            actor, "retry.requested", f"Task/{name}", {"from": row.state, "reason": row.reason}
        )
    )
    write_batch(state.db, batch, now)
    return [name]


def retry_target(state: State, target: str, actor: str, now: datetime) -> list[str]:
    """`mc retry` of `Task/NAME`, `WorkflowRun/NAME[.STEP]`, or a bare name: a workflow run
    (or RUN.STEP) when one is so named, else a task. The tasks requeued."""
    kind, sep, name = target.partition("/")
    if sep and kind == "Task":
        return retry_task(state, name, actor, now)
    if sep and kind == "WorkflowRun":
        return retry_workflow_run(state, name, actor, now)
    if sep:
        raise MCError(f"{target!r}: retry takes Task/NAME or WorkflowRun/NAME[.STEP]")
    if state.reader.workflow_runs([target.partition(".")[0]]):
        return retry_workflow_run(state, target, actor, now)
    return retry_task(state, target, actor, now)


def _requeue(batch: WriteBatch, row: TaskRow, actor: str, now: datetime) -> None:
    why = "retry requested (mc retry)"
    t = transition(row.name, row.state, TaskState.INBOX, actor, why, now.isoformat())
    batch.add_task(t.write(attempts=0, rework=0))
