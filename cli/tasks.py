"""`mc tasks` and `mc task NAME`: what each task is doing and, when it is not running, why."""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from cli.ansi import terminal_safe
from cli.main import JsonOpt, app, out
from cli.reading import read
from cli.render import Note, event_line, id_column, money, print_rows, when
from reconciler.tasks.lifecycle import TaskState

STATES = tuple(s.value for s in TaskState)
OUTPUT_CHARS = 2000  # of the latest run's output `mc task` prints; --json has it whole
OUTPUT_LINES = 40

WHY_STYLE = {
    "running": "cyan",
    "ready": "cyan",
    "done": "green",
    "failed": "red",
    "denied": "red",
    "approval": "yellow",
    "review": "yellow",
}


def why_text(why: dict[str, Any] | None) -> str:
    """`category: detail`, coloured by what it waits for."""
    if not why:
        return ""
    style = WHY_STYLE.get(why["category"], "yellow")
    head = f"[{style}]{escape(why['category'])}[/]"
    return head if why["detail"] == why["category"] else f"{head}: {escape(why['detail'])}"


@app.command()
def tasks(
    state: Annotated[
        str | None, typer.Option("--state", help="Only tasks in this state (e.g. FAILED).")
    ] = None,
    agent: Annotated[str | None, typer.Option("--agent", help="Only this agent's tasks.")] = None,
    label: Annotated[
        str | None, typer.Option("--label", help="Only tasks with this label: key=value or key.")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many.")] = 500,
    as_json: JsonOpt = False,
) -> None:
    """Tasks, most recently changed first: state, agent, attempts, and why each waits."""
    if state is not None and state.upper() not in STATES:
        raise typer.BadParameter(
            f"{state!r} is not a task state; one of {', '.join(STATES)}", param_hint="--state"
        )
    params = {"state": state, "agent": agent, "label": label, "limit": str(limit)}
    body = read("tasks", params)
    if as_json:
        sys.stdout.write(json.dumps(body["tasks"], indent=2) + "\n")
        return
    print_task_rows(body["tasks"])
    shown, total = len(body["tasks"]), body["total"]
    if shown < total:
        out.print(f"[dim]{shown} of {total} shown; narrow with --state/--agent/--label.[/]")


def print_task_rows(rows: list[dict[str, Any]]) -> None:
    """One line per task (names never cut) and why it waits beneath it (render.print_rows)."""
    head = ("task", "state", "agent", "attempts", "updated")
    cells = [
        (t["name"], t["state"], t["agent"] or "-", str(t["attempts"]), when(t["updated_at"]))
        for t in rows
    ]
    notes: list[Note | None] = []
    for t in rows:
        why = t["why"] or ({"category": "reason", "detail": t["reason"]} if t["reason"] else None)
        if why is None or why["category"] == "done":  # the state says it
            notes.append(None)
            continue
        detail = why["detail"] if why["detail"] != why["category"] else ""
        notes.append(Note(why["category"], detail, WHY_STYLE.get(why["category"], "yellow")))
    print_rows(out, head, cells, notes)


@app.command()
def task(
    name: Annotated[str, typer.Argument(help="The task (a workflow step is RUN.STEP).")],
    as_json: JsonOpt = False,
) -> None:
    """One task: its spec, state and why, attempts, approvals, neighbours and recent events."""
    body = read("task", {"name": name})
    if as_json:
        sys.stdout.write(json.dumps(body, indent=2) + "\n")
        return
    print_task(body)


def print_task(t: dict[str, Any]) -> None:
    spec = t["spec"]
    out.print(f"Task [bold]{escape(t['name'])}[/]: {escape(t['title'])}")
    who = spec["agent"] or "any agent with " + ", ".join(spec["requires"])
    out.print(
        f"  agent: {escape(who)}   priority {spec['priority']}   risk {spec['risk'] or '-'}"
        f"   approval: {spec['approval']}   max attempts {spec['max_attempts']}"
        f"   max rework {spec['max_rework'] if spec['max_rework'] is not None else 'default'}"
    )
    reason = t.get("denied_by") or t["reason"] or ""
    out.print(f"State: [bold]{t['state']}[/]  {escape(reason)}")
    why = t["why"]
    until = f" (until {when(why['until'])})" if why["until"] else ""
    if why["until"] and when(why["until"]) in why["detail"].replace(" UTC", ""):
        until = ""  # the detail names the time already (a backoff's next attempt)
    out.print(f"Why: {why_text(why)}{until}")
    _approvals(t["approvals"])
    _neighbours("Depends on", t["depends_on"])
    _neighbours("Dependents", t["dependents"])
    if t["feedback"]:
        out.print(f"Feedback for the agent: {escape(t['feedback'])}")
    for r in t["rework"]:
        out.print(
            f"  rework round {r['round']} by {escape(str(r['by']))} at {when(r['at'])}:"
            f" {escape(str(r['feedback']))}"
        )
    _output(t)
    _runs(t)
    if t["events"]:
        out.print("Recent events:")
        for e in t["events"][:10]:
            out.print(
                f"  [dim]{when(e['time'])}[/] {escape(e['kind'])} [dim]{escape(e['actor'])}[/]"
                f" {event_line(e['kind'], e['data'])}"
            )


def bounded(text: str, chars: int = OUTPUT_CHARS, lines: int = OUTPUT_LINES) -> str:
    """`text` cut to at most `chars` characters and `lines` lines, with a note of what was cut;
    escape sequences removed (an agent wrote it)."""
    text = terminal_safe(text)
    kept = "\n".join(text.splitlines()[:lines])[:chars]
    if len(kept) >= len(text.rstrip("\n")):
        return text.rstrip("\n")
    return f"{kept}\n… (truncated: {len(text) - len(kept)} more characters; --json shows it all)"


def _output(t: dict[str, Any]) -> None:
    """The latest run's result: what a reviewer approves."""
    output, outputs = t.get("output"), t.get("outputs")
    if output is None and not outputs:
        return
    if output is not None:
        text = output if isinstance(output, str) else json.dumps(output, indent=2)
        out.print("Output (latest run):")
        out.print(escape(bounded(text)), highlight=False)
    if outputs:
        out.print("Outputs (latest run):")
        out.print(escape(bounded(json.dumps(outputs, indent=2))), highlight=False)


def _approvals(a: dict[str, Any]) -> None:
    if not a["gated"]:
        return
    given = ", ".join(a["given_by"]) or "none yet"
    extra = " · denied" if a["denied"] else ""
    if a["changes_requested_by"]:
        extra += f" · changes requested by {a['changes_requested_by']}"
    out.print(
        f"Approvals: {len(a['given_by'])}/{a['needed']} given ({escape(given)});"
        f" risk {a['risk']} by {escape(a['rule'])}{extra}"
    )


def _neighbours(title: str, found: list[dict[str, Any]]) -> None:
    if found:
        shown = ", ".join(f"{escape(n['name'])} ({n['state'] or 'not declared'})" for n in found)
        out.print(f"{title}: {shown}")


def _runs(t: dict[str, Any]) -> None:
    if not t["runs"]:
        out.print("Attempts: none yet")
        return
    table = Table(id_column("run"), "attempt", "agent", "outcome", "cost", "duration", "started")
    for r in t["runs"]:
        took = f"{r['duration_s']:.1f}s" if r["duration_s"] is not None else "running"
        outcome = r["status"] or r["state"]
        if r["error"]:
            outcome += f": {r['error'][:60]}"
        table.add_row(
            r["id"],
            str(r["attempt"]),
            escape(r["agent"]),
            escape(outcome),
            money(r["cost_usd"]),
            took,
            when(r["started_at"]),
        )
    out.print(f"Attempts: {len(t['runs'])}, cost {money(t['cost_usd'])}")
    out.print(table)
