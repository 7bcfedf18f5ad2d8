"""`mc approve`, `mc approvals`, `mc explain`: approvals bound to content, and why."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from cli.main import JsonOpt, app, mission_context, out
from reconciler.commands import approvals as approve_ops
from state.records import ApprovalRow


@app.command()
def approve(
    target: Annotated[str, typer.Argument(help="Kind/name, e.g. Agent/writer or Task/deploy.")],
    deny: Annotated[
        bool, typer.Option("--deny", help="Record a deny (final until it changes).")
    ] = False,
    reason: Annotated[str, typer.Option("--reason", help="Why, for the audit log.")] = "",
) -> None:
    """Approve (or deny) the target's current content with a signed commit.

    Writes approvals/<name>.yaml naming the target's digest and commits it signed with your
    git signing key (SSH or GPG). It counts only if that key belongs to an approver declared
    in the applied mission.yaml; a later change to the target voids it."""
    done = approve_ops.approve(mission_context(), target, deny, reason)
    verb = "Denied" if deny else "Approved"
    out.print(
        f"{verb} {target} at {done.digest[:19]}… in signed commit {done.commit[:12]} ({done.path})."
    )
    out.print("`mc apply` (or `mc serve`) takes it into account.")


@app.command()
def approvals(as_json: JsonOpt = False) -> None:
    """Pending approvals (plan actions and tasks) and every decision with its evidence."""
    report = approve_ops.approvals(mission_context())
    if as_json:
        sys.stdout.write(json.dumps(_approvals_json(report), indent=2, default=str) + "\n")
        return
    table = Table("target", "action", "risk", "digest", "why", title="Pending (plan)")
    for p in report.pending:
        table.add_row(p.key, p.action, p.risk, (p.digest or "")[:19], escape(p.reason))
    out.print(table)
    tasks = Table("task", "state", "reason", title="Tasks waiting for a person")
    for t in report.waiting_tasks:
        tasks.add_row(t["task"], t["state"], escape(t["reason"] or ""))
    out.print(tasks)
    out.print(_decisions_table(report.decided))


def _approvals_json(report: approve_ops.ApprovalsReport) -> dict[str, Any]:
    pending = [
        {
            "target": p.key,
            "action": p.action,
            "digest": p.digest,
            "risk": p.risk,
            "reason": p.reason,
            "since": p.since.isoformat(),
        }
        for p in report.pending
    ]
    decided = [
        {
            "id": d.id,
            "target": d.target,
            "digest": d.digest,
            "approver": d.approver,
            "decision": d.decision,
            "channel": d.channel,
            "status": d.status,
            "reason": d.reason,
            "evidence": d.evidence,
            "at": d.at.isoformat(),
        }
        for d in report.decided
    ]
    return {"pending": pending, "tasks": report.waiting_tasks, "decided": decided}


def _decisions_table(decided: Sequence[ApprovalRow]) -> Table:
    table = Table(
        "target", "decision", "approver", "channel", "status", "why / evidence", title="Decisions"
    )
    for d in decided:
        ev = d.evidence.get("commit") or d.evidence.get("message_id") or ""
        why = d.reason or f"commit {str(ev)[:12]} key {d.evidence.get('key', '')}"
        table.add_row(d.target, d.decision, d.approver or "-", d.channel, d.status, escape(why))
    return table


@app.command()
def explain(
    target: Annotated[str, typer.Argument(help="Kind/name, e.g. Agent/writer or Task/deploy.")],
) -> None:
    """The policy decision for a resource and the rule that made it."""
    found = approve_ops.explain(mission_context(), target)
    if found.action is None:
        out.print(f"{target}: no change planned (the state matches HEAD).")
    else:
        a = found.action
        out.print(
            f"{target}: {a.change.__class__.__name__.replace('Resource', '').lower()}"
            f" → risk {a.decision.risk} by {a.decision.rule}; status {a.status}"
        )
        if a.decision.approvals_needed:
            have = ", ".join(a.approved_by) or "none yet"
            out.print(f"  approvals: {len(a.approved_by)}/{a.decision.approvals_needed} ({have})")
        note = a.note or a.decision.note
        if note:
            out.print(f"  note: {escape(note)}")
    if found.dispatch is not None:
        risk, rule = found.dispatch
        out.print(f"dispatch: risk {risk} by {rule}")
