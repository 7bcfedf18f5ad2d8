"""`mc run`, `mc workflows`, `mc run-status`, `mc retry`: workflow runs declared in git."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from cli.main import JsonOpt, actor, app, mission_context, out
from reconciler.commands import workflow_runs as runs_ops
from reconciler.tasks.lifecycle import TaskState as S

ICON: dict[str, tuple[str, str]] = {
    S.DONE: ("✔", "green"),
    S.FAILED: ("✘", "red"),
    S.BLOCKED: ("■", "yellow"),
    S.IN_PROGRESS: ("●", "cyan"),
    S.ASSIGNED: ("◐", "cyan"),
    S.NEEDS_APPROVAL: ("?", "yellow"),
    S.REVIEW: ("?", "yellow"),
    S.CANCELED: ("-", "dim"),
    S.INBOX: ("○", "white"),
}
RUN_STYLE = {"SUCCEEDED": "green", "FAILED": "red", "BLOCKED": "yellow", "NEEDS_APPROVAL": "yellow"}


@app.command("run")
def run_workflow(
    workflow: Annotated[str, typer.Argument(help="The workflow to run.")],
    inputs: Annotated[
        list[str] | None, typer.Option("--input", "-i", help="An input as key=value (repeatable).")
    ] = None,
    name: Annotated[
        str | None, typer.Option("--name", help="Workflow run name (default: WORKFLOW-time).")
    ] = None,
    no_commit: Annotated[
        bool, typer.Option("--no-commit", help="Only write runs/NAME.yaml.")
    ] = False,
) -> None:
    """Declare a workflow run: write runs/NAME.yaml and commit it (then `mc apply` runs it)."""
    ctx = mission_context()
    inputs_ = runs_ops.parse_inputs(inputs or [])
    new = runs_ops.start_run(ctx, workflow, inputs_, name, not no_commit)
    if new.commit:
        out.print(f"Committed {new.path} ({new.commit[:12]}). Start it with `mc apply`.")
    else:
        out.print(f"Wrote {new.path}. Commit it, then `mc apply`.")


@app.command()
def workflows(as_json: JsonOpt = False) -> None:
    """Applied workflows: their steps, inputs and how many workflow runs each has."""
    found = runs_ops.workflows(mission_context())
    if as_json:
        rows = [{"name": n, "spec": s, "runs": c} for n, s, c in found]
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
        return
    table = Table("workflow", "steps", "inputs", "workflow runs")
    for wf_name, spec, count in found:
        steps = " → ".join(s["id"] for s in spec["steps"])
        inputs = ", ".join(f"{k}{'*' if v['required'] else ''}" for k, v in spec["inputs"].items())
        table.add_row(wf_name, escape(steps), escape(inputs), str(count))
    out.print(table)
    out.print("[dim]* required input[/]")


@app.command("run-status")
def run_status(
    name: Annotated[str, typer.Argument(help="The workflow run.")],
    as_json: JsonOpt = False,
) -> None:
    """Draw a workflow run's DAG with each step's state."""
    status = runs_ops.run_status(mission_context(), name)
    run = status.run
    if as_json:
        body = {
            "name": run.name,
            "workflow": run.workflow,
            "status": run.status,
            "inputs": run.inputs,
            "outputs": run.outputs,
            "workflow_digest": run.workflow_digest,
            "steps": [s.__dict__ for s in status.steps],
        }
        sys.stdout.write(json.dumps(body, indent=2, default=str) + "\n")
        return
    colour = RUN_STYLE.get(run.status, "cyan")
    inputs = ", ".join(f"{k}={v}" for k, v in run.inputs.items())
    out.print(
        f"Workflow run [bold]{escape(run.name)}[/] of {escape(run.workflow)}:"
        f" [{colour}]{run.status}[/]"
    )
    out.print(f"[dim]inputs: {escape(inputs)}   pinned {run.workflow_digest[:19]}[/]")
    depth: dict[str, int] = {}
    for step in status.steps:  # steps are validated acyclic; a few passes settle the depths
        depth[step.id] = 0
    for _ in status.steps:
        for step in status.steps:
            depth[step.id] = max([depth[d] + 1 for d in step.depends_on] + [0])
    for stage in sorted(set(depth.values())):
        label = f"stage {stage + 1}"
        for step in [s for s in status.steps if depth[s.id] == stage]:
            icon, style = ICON.get(step.state, ("·", "white"))
            arrows = f" ◀─ {', '.join(step.depends_on)}" if step.depends_on else ""
            extra = f" (rework {step.rework})" if step.rework else ""
            shown = step.state != S.DONE or (step.reason or "").startswith("skipped")
            reason = f"  [dim]{escape((step.reason or '')[:70])}[/]" if shown else ""
            out.print(
                f"  {label:<8} [{style}]{icon} {escape(step.id):<14} {step.state:<14}[/]"
                f"{escape(arrows)}{extra}{reason}"
            )
            label = ""


@app.command()
def retry(
    target: Annotated[str, typer.Argument(help="WORKFLOW_RUN, or WORKFLOW_RUN.STEP for one step.")],
) -> None:
    """Send FAILED or BLOCKED steps of a workflow run back to the queue (recorded as an event).
    The GitOps way: bump spec.retry_nonce in the workflow run's file and commit."""
    names = runs_ops.retry(mission_context(), target, actor())
    out.print(f"Requeued {', '.join(names)}. `mc apply` (or `mc serve`) carries on.")
