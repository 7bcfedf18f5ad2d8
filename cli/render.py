"""Render plans, status and events for people (rich) and for programs (--json)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, assert_never

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from reconciler.actions import CreateResource, DeleteResource, PlannedAction, UpdateResource
from reconciler.operations import StatusReport
from reconciler.plan import Plan
from state.records import Event

SYMBOL = {"create": ("+", "green"), "update": ("~", "yellow"), "delete": ("-", "red")}
STATUS_TEXT = {
    "apply": "",
    "needs_approval": "[bold yellow]needs approval[/]",
    "denied": "[bold red]denied[/]",
    "unapprovable": "[bold red]cannot be approved[/]",
}


def _value(v: Any) -> str:
    return escape(json.dumps(v, default=str, ensure_ascii=False))


def plan_lines(plan: Plan) -> list[str]:
    """Terraform-style lines: one per action, field diffs under updates."""
    lines: list[str] = []
    for action in plan.actions:
        lines.extend(_action_lines(action))
    return lines


def _action_lines(action: PlannedAction) -> list[str]:
    change = action.change
    risk = action.verdict.risk
    risk_style = {"LOW": "dim", "HIGH": "yellow", "RED": "bold red", "DENY": "bold red"}[risk]
    approvals = ""
    if action.status == "needs_approval":
        have = len(action.approved_by)
        approvals = f" {have}/{action.verdict.approvals_needed} approvals"
    tail = f"  [{risk_style}]{risk}[/] [dim]({escape(action.verdict.rule)})[/]"
    tail += f" {STATUS_TEXT[action.status]}{approvals}"
    match change:
        case CreateResource():
            symbol, colour = SYMBOL["create"]
            head = f"[{colour}]{symbol} {change.kind}/{escape(change.name)}[/]"
            return [head + tail + _note(action)]
        case UpdateResource():
            symbol, colour = SYMBOL["update"]
            head = f"[{colour}]{symbol} {change.kind}/{escape(change.name)}[/]"
            diff = [
                f"    [yellow]~[/] {escape(c.path)}: {_value(c.old)} [dim]→[/] {_value(c.new)}"
                for c in change.changes
            ]
            return [head + tail + _note(action), *diff]
        case DeleteResource():
            symbol, colour = SYMBOL["delete"]
            running = " [bold red](running: its work will be stopped)[/]" if change.running else ""
            head = f"[{colour}]{symbol} {change.kind}/{escape(change.name)}[/]{running}"
            return [head + tail + _note(action)]
        case _:
            assert_never(change)


def _note(action: PlannedAction) -> str:
    note = action.note or action.verdict.note
    return f"\n    [dim]{escape(note)}[/]" if note and action.status != "apply" else ""


def print_plan(console: Console, plan: Plan, dirty: Sequence[str] = ()) -> None:
    where = f"commit {plan.commit[:12]}" if plan.commit else "the work tree (uncommitted preview)"
    console.print(f"Plan for {where}, against state serial {plan.serial}", highlight=False)
    if plan.trust_on_first_use:
        console.print(
            "[bold]Trust on first use:[/] the state is empty, so this first apply trusts the"
            " initial agents and approvers; from then on changes to them need approval."
        )
    if dirty:
        shown = ", ".join(dirty[:5]) + (" …" if len(dirty) > 5 else "")
        console.print(
            f"[yellow]Note:[/] uncommitted changes are not part of this plan: {escape(shown)}"
            " (commit them, or preview with --worktree)"
        )
    if not plan.actions:
        console.print("[green]No changes.[/] The state matches the desired state.")
        return
    console.print()
    console.print("\n".join(plan_lines(plan)), highlight=False, soft_wrap=True)
    c = plan.counts()
    console.print(
        f"\nPlan: [green]{c['create']} to create[/], [yellow]{c['update']} to update[/],"
        f" [red]{c['delete']} to delete[/]; {c['needs_approval']} waiting for approval,"
        f" {c['blocked']} blocked.",
        highlight=False,
    )


def print_status(console: Console, report: StatusReport) -> None:
    mission = report.mission or "(nothing applied yet)"
    console.print(f"Mission: [bold]{escape(mission)}[/]  mode: {report.mode or '-'}")
    applied = report.applied_commit[:12] if report.applied_commit else "-"
    head = report.head[:12] if report.head else "-"
    behind = "" if report.applied_commit == report.head else "  [yellow](HEAD not applied)[/]"
    console.print(f"Applied commit: {applied}  HEAD: {head}{behind}  serial: {report.serial}")
    if report.dirty:
        console.print(f"[yellow]Uncommitted mission changes:[/] {escape(', '.join(report.dirty))}")
    if report.tasks:
        counts = "  ".join(f"{k}: {v}" for k, v in sorted(report.tasks.items()))
        console.print(f"Tasks: {counts}")
    if report.agents:
        table = Table("agent", "status", "capabilities", "concurrency", title="Agents")
        for a in report.agents:
            table.add_row(
                a["name"], a["status"], ", ".join(a["capabilities"]), str(a["concurrency"])
            )
        console.print(table)
    if report.pending:
        table = Table("target", "action", "risk", "waiting since", "why", title="Pending approval")
        for p in report.pending:
            table.add_row(p.key, p.action, p.risk, p.since.isoformat(timespec="seconds"), p.reason)
        console.print(table)


def status_json(report: StatusReport) -> dict[str, Any]:
    return {
        "mission": report.mission,
        "mode": report.mode,
        "applied_commit": report.applied_commit,
        "head": report.head,
        "state_serial": report.serial,
        "tasks": report.tasks,
        "agents": report.agents,
        "pending": [
            {
                "target": p.key,
                "action": p.action,
                "digest": p.digest,
                "risk": p.risk,
                "reason": p.reason,
                "commit": p.commit,
                "since": p.since.isoformat(),
            }
            for p in report.pending
        ],
        "uncommitted": report.dirty,
    }


def event_json(e: Event) -> dict[str, Any]:
    return {
        "seq": e.seq,
        "time": e.time.isoformat(),
        "actor": e.actor,
        "kind": e.kind,
        "subject": e.subject,
        "data": e.data,
        "commit": e.commit,
    }


def print_events(console: Console, events: Sequence[Event]) -> None:
    for e in events:
        data = json.dumps(e.data, default=str, ensure_ascii=False) if e.data else ""
        console.print(
            f"[dim]{e.seq:>6} {e.time.isoformat(timespec='seconds')}[/] {escape(e.kind):<22}"
            f" {escape(e.subject)} [dim]{escape(e.actor)}[/] {escape(data)}",
            highlight=False,
        )
