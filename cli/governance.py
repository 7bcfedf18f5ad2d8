"""`mc approve`, `mc approvals`, `mc explain`: approvals bound to content, and why."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from cli.main import JsonOpt, app, err, mission_context, out
from cli.reading import read
from cli.render import Note, print_rows
from reconciler.commands import approvals as approve_ops
from reconciler.commands import approve_checks
from specs.errors import MCError


@app.command()
def approve(
    targets: Annotated[
        list[str],
        typer.Argument(
            metavar="TARGET", help="Kind/name, e.g. Agent/writer or Task/deploy (several)."
        ),
    ],
    deny: Annotated[
        bool, typer.Option("--deny", help="Record a deny (final until it changes).")
    ] = False,
    request_changes: Annotated[
        str | None,
        typer.Option(
            "--request-changes",
            metavar="FEEDBACK",
            help="For a task in REVIEW: send it back to its agent with FEEDBACK (a rework"
            " round, up to the task's max_rework).",
        ),
    ] = None,
    reason: Annotated[str, typer.Option("--reason", help="Why, for the audit log.")] = "",
) -> None:
    """Approve (or deny, or request changes on) each target's current content with a signed
    commit.

    Writes `approvals/NAME.yaml` naming the target's digest and commits it signed with your
    git signing key (SSH or GPG). It counts only if that key belongs to an approver declared
    in the applied mission.yaml; a later change to the target voids it. Warns first about an
    approval that will not count (an undeclared key, a second decision on the same content) or
    that nothing waits for (a DONE or ungated task, no planned change needing one). The file is
    named after the approver whose key signs."""
    if deny and request_changes is not None:
        raise MCError("--deny and --request-changes exclude each other")
    decision = "deny" if deny else "approve" if request_changes is None else "request_changes"
    words = request_changes if request_changes is not None else reason
    ctx = mission_context()
    checked = approve_checks.preflight(ctx, targets, decision, words)
    verb = {"approve": "Approved", "deny": "Denied", "request_changes": "Requested changes on"}
    for item in checked:
        for warning in item.warnings:
            err.print(f"[yellow]warning:[/] {escape(warning)}", highlight=False)
        done = approve_ops.approve(ctx, item.target, decision, words, item.digest, item.approver)
        out.print(
            f"{verb[decision]} {item.target} at {done.digest[:19]}… in signed commit"
            f" {done.commit[:12]} ({done.path})."
        )
    out.print("`mc apply` (or `mc serve`) takes it into account.")


@app.command()
def approvals(as_json: JsonOpt = False) -> None:
    """Pending approvals (plan actions and tasks) and every decision with its evidence."""
    body = read("approvals")
    if as_json:
        sys.stdout.write(json.dumps(body, indent=2, default=str) + "\n")
        return
    table = Table("target", "action", "risk", "digest", "why", title="Pending (plan)")
    for p in body["pending"]:
        table.add_row(
            escape(p["target"]),
            p["action"],
            p["risk"],
            (p["digest"] or "")[:19],
            escape(p["reason"]),
        )
    out.print(table)
    tasks = Table("task", "state", "reason", title="Tasks waiting for a person")
    for t in body["tasks"]:
        tasks.add_row(escape(t["task"]), t["state"], escape(t["reason"] or ""))
    out.print(tasks)
    _print_decisions(body["decided"])


def _print_decisions(decided: Sequence[dict[str, Any]]) -> None:
    """Each decision on one line, its reason or evidence (commit, whole key fingerprint)
    beneath it (render.print_rows: never cut)."""
    out.print("[italic]Decisions[/]")
    rows, notes = [], []
    for d in decided:
        ev = d["evidence"].get("commit") or d["evidence"].get("message_id") or ""
        why = d["reason"] or f"commit {str(ev)[:12]} key {d['evidence'].get('key', '')}"
        rows.append((d["target"], d["decision"], d["approver"] or "-", d["channel"], d["status"]))
        notes.append(Note("why" if d["reason"] else "evidence", why))
    head = ("target", "decision", "approver", "channel", "status")
    print_rows(out, head, rows, notes)


@app.command()
def explain(
    target: Annotated[
        str,
        typer.Argument(help="Kind/name, e.g. Agent/writer or Task/deploy (a bare name is a task)."),
    ],
) -> None:
    """The policy decision for a resource and the rule that made it; for a task, also why it
    is not running (the scheduler's own answer: dependency, approval, agent, budget, …)."""
    found = read("explain", {"target": target})
    target = found["target"]  # as resolved: `x` is `Task/x`, `task/x` is `Task/x`
    a = found["action"]
    if a is None:
        out.print(f"{target}: no change planned (the state matches HEAD).")
    else:
        out.print(
            f"{target}: {a['change']} → risk {a['risk']} by {a['rule']}; status {a['status']}"
        )
        if a["approvals_needed"]:
            have = ", ".join(a["approved_by"]) or "none yet"
            out.print(f"  approvals: {len(a['approved_by'])}/{a['approvals_needed']} ({have})")
        if a["note"]:
            out.print(f"  note: {escape(a['note'])}")
    if found["dispatch"] is not None:
        d = found["dispatch"]
        gate = f"; gate: {escape(d['gate'])}" if d.get("gate") else ""
        out.print(f"dispatch: risk {d['risk']} by {escape(d['rule'])}{gate}")
    if found["why"] is not None:
        why = found["why"]
        at = (why["until"] or "")[:19].replace("T", " ")
        until = f" (until {at})" if at and at not in why["detail"] else ""
        out.print(f"why not running: {why['category']}: {escape(why['detail'])}{until}")
