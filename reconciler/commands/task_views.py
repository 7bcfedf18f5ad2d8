"""`mc tasks` and `mc task NAME` (and `mc explain Task/x`): tasks with why each is not running,
as JSON-ready dicts built from one reader; read_views.py serves them to the CLI, locally or
through the process that holds the state.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from reconciler.commands.denials import DENIED_PREFIX, denied_by
from reconciler.commands.status import event_to_json
from reconciler.engine.approval_gates import dispatch_risk, gate
from reconciler.engine.launch import per_run_cap
from reconciler.engine.mirror import InFlight, TaskRec, World, load_world
from reconciler.engine.why import DENIED, FAILED, Why, why
from specs.errors import MCError
from specs.money import money_json
from state.dashboard import IN_FLIGHT, DashboardReader, TaskFilter
from state.records import Event, RunRow
from state.store import StateReader

UNNAMED_DENIAL = "denied (by an approver, or by policy)"  # engine/enact.py's reason
REWORK_EVENTS = ("task.changes_requested", "workflow.rework")
RECENT_EVENTS = 20
MAX_LIST = 10_000


@dataclass(frozen=True)
class TaskQuery:
    """`mc tasks` filters: state, agent (assigned, else declared), label `k=v` or `k`."""

    state: str | None = None
    agent: str | None = None
    label: str | None = None
    limit: int = 500


def why_json(found: Why) -> dict[str, Any]:
    """The blocking condition: `category`, `detail`, `until` (ISO time or null)."""
    return {
        "category": found.category,
        "detail": found.detail,
        "until": found.until.isoformat() if found.until else None,
    }


def task_list(
    reader: StateReader, dash: DashboardReader, q: TaskQuery, now: datetime, driven: bool = True
) -> Any:
    """Tasks matching the query, most recently changed first, each with why it waits
    (`driven`: whether a process drives the work, engine/why.py)."""
    key, sep, value = (q.label or "").partition("=")
    filt = TaskFilter(
        state=q.state.upper() if q.state else None,
        agent=q.agent,
        label_key=key or None,
        label_value=value if sep else None,
    )
    page = dash.task_page(filt, limit=min(max(q.limit, 1), MAX_LIST), offset=0)
    world = engine_view(reader, now) if page.rows else None
    rows = []
    for t in page.rows:
        rec = world.tasks.get(t.name) if world is not None else None
        rows.append(
            {
                "name": t.name,
                "state": t.state,
                "agent": t.agent,
                "attempts": t.attempts,
                "reason": t.reason,
                "updated_at": t.updated_at.isoformat(),
                "title": t.title,
                "labels": t.labels,
                "workflow_run": t.workflow_run,
                "why": why_json(why(world, rec, now, driven)) if world and rec else None,
            }
        )
    return {"tasks": rows, "total": page.total}


def task_detail(
    reader: StateReader, dash: DashboardReader, name: str, now: datetime, driven: bool = True
) -> Any:
    """Everything `mc task NAME` shows; MCError when no such task exists. `driven`: whether a
    process drives the work (engine/why.py)."""
    world = engine_view(reader, now)
    rec = world.tasks.get(name) if world is not None else None
    if world is None or rec is None:
        raise MCError(f"no task {name!r} (see `mc tasks`)")
    found = named_why(dash, world, rec, now, driven)
    denied = found.detail.split(";")[0] if found.detail.startswith("denied by ") else None
    runs = reader.runs(task=name, limit=50)
    row = next(iter(reader.tasks([name])), None)
    subject = f"Task/{name}"
    recent = dash.event_page(subject=subject, limit=RECENT_EVENTS)
    return {
        "name": name,
        "title": rec.spec.title,
        "state": rec.state.value,
        "reason": rec.reason,
        "denied_by": denied,  # the approver(s) with their comments, or the policy rule
        "agent": rec.agent or rec.spec.agent,
        "attempts": len(runs),
        "labels": rec.labels,
        "workflow_run": rec.step.run if rec.step else None,
        "spec": _spec_summary(rec),
        "why": why_json(found),
        "approvals": _approvals(world, rec, found, now),
        "runs": [_run(r) for r in runs],
        "cost_usd": money_json(sum((r.cost_usd for r in runs), Decimal(0))),
        "depends_on": [_neighbour(world, d) for d in rec.depends_on],
        "dependents": [
            _neighbour(world, t.name) for t in world.tasks.values() if name in t.depends_on
        ],
        "feedback": rec.feedback,
        # the latest run's result (as stored: redacted), what a reviewer approves
        "output": row.output if row else None,
        "outputs": row.outputs if row else None,
        "rework": rework_rounds(dash, subject),
        "events": [event_to_json(e) for e in recent],
    }


def named_why(
    dash: DashboardReader, world: World, rec: TaskRec, now: datetime, driven: bool = True
) -> Why:
    """engine/why.py's answer, with a denial naming who denied the task (approver, channel,
    comment) or the policy rule (reconciler/commands/denials.py), as the dashboard does."""
    found = why(world, rec, now, driven)
    denied = found.category == DENIED or (
        found.category == FAILED and (rec.reason or "").startswith(DENIED_PREFIX)
    )
    if not denied or UNNAMED_DENIAL not in found.detail:
        return found
    named = denied_by(dash, f"Task/{rec.name}", rec.digest, lambda: dispatch_risk(world, rec))
    if named is None:
        return found
    return dataclasses.replace(found, detail=found.detail.replace(UNNAMED_DENIAL, named))


def engine_view(reader: StateReader, now: datetime) -> World | None:
    """The mirror as the engine holds it: the applied state plus the runs in flight, which give
    each agent its load and each task its run (load_world alone counts no load). Reservations
    are the per-run caps; a run started without one counts as unbounded, as after a restart."""
    world = load_world(reader, now.date())
    if world is None:
        return None
    for run in reader.runs(states=list(IN_FLIGHT)):
        task, agent = world.tasks.get(run.task), world.agents.get(run.agent)
        cap = per_run_cap(task, agent) if task is not None and agent is not None else None
        world.in_flight[run.id] = InFlight(
            run.id, run.task, run.agent, run.attempt, cap, run.pid, run.proc_start
        )
        if agent is not None:
            agent.running += 1
        if task is not None and task.run is None:
            task.run = run.id
    return world


def rework_rounds(dash: DashboardReader, subject: str) -> list[dict[str, Any]]:
    """Each round of requested changes (a reviewer's, or a workflow verifier's), oldest first:
    {round, feedback, by, at}."""
    found: list[Event] = []
    for kind in REWORK_EVENTS:
        found += dash.event_page(subject=subject, kind=kind, limit=100)
    rounds = []
    for e in sorted(found, key=lambda e: e.seq):
        rounds.append(
            {
                "round": e.data.get("round"),
                "feedback": e.data.get("feedback"),
                "by": e.data.get("by") or e.data.get("verifier"),
                "at": e.time.isoformat(),
            }
        )
    return rounds


def _spec_summary(rec: TaskRec) -> dict[str, Any]:
    spec = rec.spec
    return {
        "agent": spec.agent,
        "requires": list(spec.requires),
        "depends_on": list(spec.depends_on),
        "priority": spec.priority,
        "risk": spec.risk,
        "approval": spec.approval,
        "max_attempts": spec.retry.max_attempts,
        "max_rework": spec.max_rework,
        "timeout": spec.timeout,
        "prompt": spec.prompt,
    }


def _approvals(world: World, rec: TaskRec, found: Why, now: datetime) -> dict[str, Any]:
    g = found.approvals or gate(world, rec, now)
    return {
        "gated": g.gated,
        "risk": g.risk,
        "rule": g.rule,
        "needed": g.needed,
        "given_by": sorted(g.approved_by),
        "denied": g.denied,
        "changes_requested_by": g.changes.approver if g.changes else None,
        "approvers": sorted(world.approvers),
    }


def _neighbour(world: World, name: str) -> dict[str, Any]:
    rec = world.tasks.get(name)
    return {"name": name, "state": rec.state.value if rec else None}


def _run(r: RunRow) -> dict[str, Any]:
    duration = (r.ended_at - r.started_at).total_seconds() if r.ended_at else None
    return {
        "id": r.id,
        "attempt": r.attempt,
        "agent": r.agent,
        "state": r.state,
        "status": r.status,
        "error": r.error,
        "cost_usd": money_json(r.cost_usd),
        "started_at": r.started_at.isoformat(),
        "ended_at": r.ended_at.isoformat() if r.ended_at else None,
        "duration_s": duration,
    }
