"""Render plans, status and events for people (rich) and for programs (--json)."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, assert_never

from rich.console import Console
from rich.markup import escape
from rich.table import Column, Table

from cli.ansi import Styler, terminal_safe
from reconciler.commands.event_text import event_summary
from reconciler.commands.status import StatusReport, event_to_json, head_tag, status_to_json
from reconciler.governance.confinement import Exposure, Unconfined
from reconciler.governance.trust_chain import TrustBasis
from reconciler.plan.actions import (
    CreateResource,
    DeleteResource,
    Plan,
    PlannedAction,
    UpdateResource,
    verb_of,
)
from reconciler.tasks.lifecycle import ATTENTION
from specs.money import money_text
from state.records import Event

if TYPE_CHECKING:
    from reconciler.engine.until_idle import Converged

SYMBOL = {"create": ("+", "green"), "update": ("~", "yellow"), "delete": ("-", "red")}
RISK_STYLE = {"LOW": ("dim",), "HIGH": ("yellow",), "RED": ("bold", "red"), "DENY": ("bold", "red")}
STATUS_TEXT = {
    "apply": ("", ()),
    "needs_approval": ("needs approval", ("bold", "yellow")),
    "denied": ("denied", ("bold", "red")),
    "unapprovable": ("cannot be approved", ("bold", "red")),
}


def money(value: Any) -> str:
    """One money format for every table (specs/money.py): dollars with 2 decimals rounded
    half up (`$0.13` for 0.125); '-' for none. JSON keeps the full precision."""
    return money_text(value)


def when(iso: str | None) -> str:
    """An ISO timestamp as tables show it: to the second, without the 'T'."""
    if not iso:
        return "-"
    return iso.replace("T", " ")[:19]


def id_column(header: str, values: Sequence[str] = ()) -> Column:
    """A column of ids or names (run ids by default): never wrapped or cut, whatever the
    terminal width; the other columns wrap instead."""
    widest = max((len(v) for v in values), default=18)
    return Column(header, no_wrap=True, min_width=max(widest, len(header)), overflow="ignore")


@dataclass(frozen=True, slots=True)
class Note:
    """The line `print_rows` prints under a row: `label: text`, the label in `style`."""

    label: str
    text: str = ""
    style: str = "dim"


def print_rows(
    console: Console,
    head: Sequence[str],
    rows: Sequence[Sequence[str]],
    notes: Sequence[Note | None] = (),
) -> None:
    """A table for narrow terminals: one line per row, the columns padded to their widest
    value and never cut (names, run ids, paths, key fingerprints), and each row's note
    beneath it, wrapped at the console's width between words only, so a long reason takes a
    line or two instead of a narrow column, and an id or path in it stays whole."""
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(head)]
    width = max(console.width, 40)

    def line(values: Sequence[str]) -> str:
        return "  ".join(v.ljust(w) for v, w in zip(values, widths, strict=True)).rstrip()

    console.print(f"[bold]{escape(line(head))}[/]", highlight=False)
    for i, row in enumerate(rows):
        console.print(escape(line(row)), highlight=False)
        note = notes[i] if i < len(notes) else None
        if note is None:
            continue
        text = f"{note.label}: {note.text}" if note.text else note.label
        wrapped = textwrap.wrap(
            text,
            width,
            initial_indent="  ",
            subsequent_indent="    ",
            break_long_words=False,
            break_on_hyphens=False,
        )
        rest = wrapped[0][2 + len(note.label) :]
        console.print(f"  [{note.style}]{escape(note.label)}[/]{escape(rest)}", highlight=False)
        for more in wrapped[1:]:
            console.print(escape(more), highlight=False)


def _field_lines(path: str, old: Any, new: Any, s: Styler) -> list[str]:
    """One changed field: `old → new`; for two lists, the elements removed (-) and added (+),
    one per line, so a long list (approvers, mounts) does not make one unreadable line."""
    if not (isinstance(old, list) and isinstance(new, list)):
        return [f"    {s('~', 'yellow')} {path}: {_value(old)} {s('→', 'dim')} {_value(new)}"]
    before, after = [_value(v, sort=True) for v in old], [_value(v, sort=True) for v in new]
    lines = [f"    {s('~', 'yellow')} {path}: {len(old)} → {len(new)} elements"]
    lines += [f"        {s('-', 'red')} {v}" for v in before if v not in after]
    lines += [f"        {s('+', 'green')} {v}" for v in after if v not in before]
    if before != after and sorted(before) == sorted(after):
        lines.append("        " + s("(same elements, new order)", "dim"))
    return lines


def _value(v: Any, sort: bool = False) -> str:
    return json.dumps(v, default=str, ensure_ascii=False, sort_keys=sort)


def plan_lines(plan: Plan, s: Styler) -> list[str]:
    """Terraform-style lines: one per action, field diffs under updates, notes under blocks."""
    lines: list[str] = []
    for action in plan.actions:
        lines.extend(_action_lines(action, s))
    return lines


def _action_lines(action: PlannedAction, s: Styler) -> list[str]:
    change = action.change
    decision = action.decision
    text, style = STATUS_TEXT[action.status]
    tail = f"  {s(decision.risk, *RISK_STYLE[decision.risk])} {s(f'({decision.rule})', 'dim')}"
    if text:
        tail += " " + s(text, *style)
    if action.status == "needs_approval":
        tail += f" {len(action.approved_by)}/{decision.approvals_needed} approvals"
        if action.approved_by:
            tail += f" (given by {', '.join(action.approved_by)})"
    elif action.approved_by:
        tail += " " + s(f"approved by {', '.join(action.approved_by)}", "green")
    symbol, colour = SYMBOL[verb_of(change)]
    if isinstance(change, UpdateResource) and change.replace:
        symbol, colour = "-/+", "red"
    head = s(f"{symbol} {change.kind}/{change.name}", colour)
    extra: list[str] = []
    match change:
        case CreateResource():
            pass
        case UpdateResource():
            if change.replace:
                head += " " + s("(replace: the started run is canceled and run anew)", "bold")
            extra = [line for c in change.changes for line in _field_lines(c.path, c.old, c.new, s)]
        case DeleteResource():
            if change.running:
                head += " " + s("(running: its work will be stopped)", "bold", "red")
        case _:
            assert_never(change)
    note = action.note or decision.note
    if note and action.status != "apply":
        extra.append("    " + s(note, "dim"))
    return [head + tail, *extra]


UNCONFINED_WHY = {"agent": "sandbox: none on the agent", "mission": "sandbox: none on the mission"}


def unconfined_lines(found: Sequence[Unconfined], s: Styler) -> list[str]:
    """One loud line per agent the plan makes run without the sandbox."""
    if not found:
        return []
    lines = [""]
    loud = s("UNCONFINED", "bold", "red")
    for u in found:
        lines.append(
            s("WARNING:", "bold", "red") + f" Agent/{u.agent} will run {loud}"
            f" ({UNCONFINED_WHY[u.by]}): no sandbox; it can read and write whatever mc's user"
            " can, and reach the network."
        )
    return lines


def trust_lines(trust: TrustBasis | None, s: Styler) -> list[str]:
    """What a plan against a state without a Mission trusts: approvers backed by git history,
    HEAD's approvers taken anew (--trust-anew), or nothing (refused, with the fix)."""
    first_use = (
        "the state holds no applied mission, so this apply trusts the agents and approvers"
        " it creates; from then on changes to them need approval."
    )
    if trust is None or trust.verdict == "chain":
        why = f" Approvers: {trust.reason}." if trust else ""
        return [s("Trust on first use:", "bold") + f" {first_use}{why}"]
    if trust.verdict == "anew":
        return [
            s("TRUSTING ANEW:", "bold", "yellow")
            + f" {trust.reason}. Trust on first use: {first_use}"
        ]
    lines = [
        s("REFUSED:", "bold", "red") + " the state holds no applied mission and HEAD's approver"
        f" set does not follow from mission.yaml's git history: {trust.reason}."
        " Nothing of this commit will be applied."
    ]
    if trust.fix:
        lines.append(s("Fix:", "bold") + f" {trust.fix}.")
    return lines


def print_plan(plan: Plan, dirty: Sequence[str] = (), s: Styler | None = None) -> None:
    s = s or Styler()
    where = f"commit {plan.commit[:12]}" if plan.commit else "the work tree (uncommitted preview)"
    lines = [f"Plan for {where}, against state serial {plan.serial}"]
    if plan.trust_on_first_use:
        lines.extend(trust_lines(plan.trust, s))
    if dirty:
        shown = ", ".join(dirty[:5]) + (" …" if len(dirty) > 5 else "")
        lines.append(
            s("Note:", "yellow") + f" uncommitted changes are not part of this plan: {shown}"
            " (commit them, or preview with --worktree)"
        )
    if not plan.actions:
        lines.append(s("No changes.", "green") + " The state matches the desired state.")
        s.write_lines(lines)
        return
    lines.append("")
    lines.extend(plan_lines(plan, s))
    lines.extend(unconfined_lines(plan.unconfined, s))
    c = plan.counts()
    lines.append(
        f"\nPlan: {s(str(c['create']) + ' to create', 'green')},"
        f" {s(str(c['update']) + ' to update', 'yellow')},"
        f" {s(str(c['delete']) + ' to delete', 'red')};"
        f" {c['needs_approval']} waiting for approval, {c['blocked']} blocked."
    )
    s.write_lines(lines)


def print_status(console: Console, report: StatusReport) -> None:
    mission = report.mission or "(nothing applied yet)"
    console.print(f"Mission: [bold]{escape(mission)}[/]  mode: {report.mode or '-'}")
    applied = report.applied_commit[:12] if report.applied_commit else "-"
    head = report.head[:12] if report.head else "-"
    tag = head_tag(report)
    behind = f"  [yellow]({escape(tag)})[/]" if tag else ""
    console.print(f"Applied commit: {applied}  HEAD: {head}{behind}  serial: {report.serial}")
    if report.head_error:
        console.print(f"[red]HEAD could not be applied:[/] {escape(report.head_error['reason'])}")
        console.print(f"  {escape(report.head_error['fix'])}")
    if report.dirty:
        console.print(f"[yellow]Uncommitted mission changes:[/] {escape(', '.join(report.dirty))}")
    if report.tasks:
        counts = "  ".join(f"{k}: {v}" for k, v in sorted(report.tasks.items()))
        console.print(f"Tasks: {counts}")
    if report.agents:
        table = Table("agent", "status", "capabilities", "concurrency", "sandbox", title="Agents")
        for a in report.agents:
            confined = a["sandbox"] if a["sandbox"] != "none" else "[bold red]NONE[/]"
            net = " +network" if a["network"] == "host" else ""
            table.add_row(
                a["name"],
                a["status"],
                ", ".join(a["capabilities"]),
                str(a["concurrency"]),
                confined + net,
            )
        console.print(table)
    print_exposure(console, report.exposure)
    for key, o in report.overrides.items():
        console.print(
            f"[bold red]OVERRIDE {escape(key)}={escape(o['value'])}[/] by {escape(o['actor'])}"
            f" since {o['since']:%Y-%m-%d %H:%M:%S}: {escape(o['reason'] or '')}"
        )
    if report.attention:
        table = Table("task", "state", "why", title="Needs a person")
        for t in report.attention:
            table.add_row(escape(t["task"]), t["state"], escape(t["reason"] or ""))
        console.print(table)
    if report.pending:
        table = Table("target", "action", "risk", "waiting since", "why", title="Pending approval")
        for p in report.pending:
            since = p.since.isoformat(timespec="seconds")
            table.add_row(escape(p.key), p.action, p.risk, since, escape(p.reason or ""))
        console.print(table)


def print_exposure(console: Console, found: Exposure) -> None:
    """The loud block: agents without the sandbox, and agents on the host network."""
    if found.unconfined:
        names = ", ".join(f"{u.agent} ({UNCONFINED_WHY[u.by]})" for u in found.unconfined)
        console.print(
            f"[bold red]WARNING: {len(found.unconfined)} agent(s) run UNCONFINED,"
            f" without the sandbox:[/] {escape(names)}"
        )
        console.print(
            "  They can read and write whatever mc's user can (the repo, the state, secrets)"
            " and reach the network."
        )
    if found.network_host:
        console.print(
            f"[bold yellow]WARNING: {len(found.network_host)} agent(s) can reach the network"
            f" (network: host):[/] {escape(', '.join(found.network_host))}"
        )


status_json = status_to_json
event_json = event_to_json


def event_line(kind: str, data: dict[str, Any]) -> str:
    """An event's data as the dashboard words it (reconciler/commands/event_text.py: the fields,
    as text), made safe for a terminal and for rich markup; `--json` has the raw data."""
    return escape(terminal_safe(event_summary(kind, data))) if data else ""


def print_events(console: Console, events: Sequence[Event]) -> None:
    for e in events:
        console.print(
            f"[dim]{e.seq:>6} {e.time.isoformat(timespec='seconds')}[/] {escape(e.kind):<22}"
            f" {escape(e.subject)} [dim]{escape(e.actor)}[/] {event_line(e.kind, e.data)}",
            highlight=False,
        )


def print_converged(console: Console, converged: Converged) -> None:
    summary = converged.summary
    if converged.recovered:
        console.print(f"[yellow]Recovered {converged.recovered} run(s) left by a stopped mc.[/]")
    counts = "  ".join(f"{k}: {v}" for k, v in sorted(summary["tasks"].items()))
    console.print(f"Tasks: {counts or 'none'}   spent today: {money(summary['spent_today'])}")
    if converged.interrupted:
        console.print("[yellow]Stopped.[/] Running agents were stopped; `mc apply` carries on.")
    elif any(summary["tasks"].get(s) for s in ATTENTION):
        console.print("Some tasks need a person: see `mc status` and `mc runs`.")
