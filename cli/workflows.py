"""`mc run`, `mc workflows`, `mc run-status`, `mc retry`: workflow runs declared in git."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from cli.main import JsonOpt, actor, app, mission_context, out
from cli.reading import note, read
from reconciler.commands import reads
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
    served = ctx.served_by()
    if new.commit and served is not None:
        out.print(
            f"Committed {new.path} ({new.commit[:12]}). `mc serve` (pid {served[0]}) starts it"
            " when it sees the commit."
        )
    elif new.commit:
        out.print(f"Committed {new.path} ({new.commit[:12]}). Start it with `mc apply`.")
    else:
        out.print(f"Wrote {new.path}. Commit it, then `mc apply`.")


@app.command()
def workflows(as_json: JsonOpt = False) -> None:
    """Applied workflows: their steps, inputs and how many workflow runs each has."""
    found = read("workflows")
    if as_json:
        sys.stdout.write(json.dumps(found, indent=2) + "\n")
        return
    table = Table("workflow", "steps", "inputs", "workflow runs")
    for row in found:
        wf_name, spec, count = row["name"], row["spec"], row["runs"]
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
    body = read("run-status", {"name": name})
    if as_json:
        sys.stdout.write(json.dumps(body, indent=2, default=str) + "\n")
        return
    colour = RUN_STYLE.get(body["status"], "cyan")
    inputs = ", ".join(f"{k}={v}" for k, v in body["inputs"].items())
    out.print(
        f"Workflow run [bold]{escape(body['name'])}[/] of {escape(body['workflow'])}:"
        f" [{colour}]{body['status']}[/]"
    )
    out.print(f"[dim]inputs: {escape(inputs)}   pinned {body['workflow_digest'][:19]}[/]")
    steps = body["steps"]
    depth: dict[str, int] = {s["id"]: 0 for s in steps}
    for _ in steps:  # steps are validated acyclic; a few passes settle the depths
        for step in steps:
            depth[step["id"]] = max([depth[d] + 1 for d in step["depends_on"]] + [0])
    for stage in sorted(set(depth.values())):
        label = f"stage {stage + 1}"
        for step in [s for s in steps if depth[s["id"]] == stage]:
            icon, style = ICON.get(step["state"], ("·", "white"))
            arrows = f" ◀─ {', '.join(step['depends_on'])}" if step["depends_on"] else ""
            extra = f" (rework {step['rework']})" if step["rework"] else ""
            why = step["reason"] or ""
            shown = step["state"] != S.DONE or why.startswith("skipped")
            reason = f"  [dim]{escape(why[:70])}[/]" if shown else ""
            out.print(
                f"  {label:<8} [{style}]{icon} {escape(step['id']):<14} {step['state']:<14}[/]"
                f"{escape(arrows)}{extra}{reason}"
            )
            label = ""


@app.command()
def retry(
    target: Annotated[
        str,
        typer.Argument(
            help="A task (NAME or Task/NAME), a workflow run (RUN or WorkflowRun/RUN),"
            " or one step (RUN.STEP)."
        ),
    ],
) -> None:
    """Send a FAILED or BLOCKED task, or the FAILED/BLOCKED steps of a workflow run, back to
    the queue with fresh attempts (recorded as a `retry.requested` event). While `mc apply` or
    `mc serve` holds the state, the request goes through it. The GitOps way stays a spec
    change: bump spec.retry_nonce (workflow runs) or change the task's spec, and commit."""
    done = reads.retry(mission_context(), target, actor())
    note(done.source)
    out.print(f"{done.body[0].upper()}{done.body[1:]}. `mc apply` (or `mc serve`) carries on.")
