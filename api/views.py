"""What the dashboard's mission-wide pages show: overview, approvals, events, serve facts.

Pure reads: every function takes the readers of one request (and `now` where time matters)
and returns plain frozen dataclasses that the templates render and FastAPI serialises. The
work itself (tasks, agents, workflow runs) is in `api.work`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from api.svg import SpendBar
from api.sync import SyncSummary
from api.sync import summary as sync_summary
from reconciler.commands.pending import PendingApprovals, pending_approvals
from reconciler.governance.confinement import Exposure, exposure
from reconciler.tasks.lifecycle import TaskState
from specs.money import normalized
from state.dashboard import DashboardReader
from state.records import AppliedResource, ApprovalRow, Event
from state.store import StateReader

TASK_STATES = [s.value for s in TaskState]
PAGE_SIZE, MAX_PAGE_SIZE = 50, 500
PENDING_SHOWN = 200  # waiting tasks listed on a page (all are counted)


@dataclass(frozen=True, slots=True)
class Readers:
    """The read interfaces of one request (one DuckDB cursor)."""

    state: StateReader
    dash: DashboardReader


def money(value: Any) -> Decimal | None:
    """An amount from a spec, normalized (`5`, `0.25`) as the API's JSON gives it."""
    return None if value is None else normalized(Decimal(str(value)))


# --- serve-loop facts --------------------------------------------------------------------------

SERVE_KEYS = (
    "last_commit",
    "last_reconciled_at",
    "last_error",
    "last_error_commit",
    "override",
    "uptime_s",
    "started_at",
)


@dataclass(frozen=True, slots=True)
class ServeFacts:
    """What `mc serve` reports about itself (all optional)."""

    last_commit: str | None = None
    last_reconciled_at: str | None = None
    last_error: str | None = None
    last_error_commit: str | None = None
    override: str | None = None  # an emergency override in force (pause, freeze, ...)
    uptime_s: float | None = None
    other: dict[str, str] = field(default_factory=dict)


def _uptime(status: Mapping[str, Any], now: datetime) -> float | None:
    uptime = status.get("uptime_s")
    if isinstance(uptime, int | float):
        return float(uptime)
    started = status.get("started_at")
    if isinstance(started, str):
        try:
            started = datetime.fromisoformat(started)
        except ValueError:
            return None
    if isinstance(started, datetime) and started.tzinfo is None:
        return max(0.0, (now - started).total_seconds())
    return None


def serve_facts(status: Mapping[str, Any] | None, now: datetime) -> ServeFacts | None:
    """`mc serve`'s status as shown: `uptime_s`, or `started_at` (naive UTC) to count from."""
    if status is None:
        return None

    def text(key: str) -> str | None:
        value = status.get(key)
        if value is None or value == "" or value is False:
            return None
        return value.isoformat() if isinstance(value, datetime) else str(value)

    return ServeFacts(
        last_commit=text("last_commit"),
        last_reconciled_at=text("last_reconciled_at"),
        last_error=text("last_error"),
        last_error_commit=text("last_error_commit"),
        override=text("override"),
        uptime_s=_uptime(status, now),
        other={k: str(v) for k, v in status.items() if k not in SERVE_KEYS and v is not None},
    )


# --- overrides ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Override:
    """An emergency override in force (e.g. the mission paused from Telegram)."""

    key: str
    value: str
    actor: str
    reason: str | None
    since: datetime


def overrides(r: Readers) -> list[Override]:
    # `<key>.git` rows only remember what git said before the override (to restore it)
    return [
        Override(key, value, actor, reason, since)
        for key, (value, actor, reason, since) in sorted(r.state.overrides().items())
        if not key.endswith(".git")
    ]


# --- overview ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Overview:
    mission: str | None
    mode: str | None
    applied_commit: str | None
    serial: int
    tasks: dict[str, int]
    total_tasks: int
    workflow_runs: dict[str, int]
    day: date
    mission_spend: SpendBar
    agent_spend: list[SpendBar]
    pending: PendingApprovals  # plan actions and tasks waiting, as `mc approvals` lists them
    events: list[Event]
    last_seq: int
    overrides: list[Override]
    serve: ServeFacts | None
    exposure: Exposure  # agents without the sandbox or on the host network: a loud banner
    sync: SyncSummary  # applied resources against HEAD's last plan


def _mission(resources: Sequence[AppliedResource]) -> AppliedResource | None:
    return next((r for r in resources if r.kind == "Mission"), None)


def spend_bars(
    r: Readers, day: date, resources: Sequence[AppliedResource]
) -> tuple[SpendBar, list[SpendBar]]:
    spent = r.state.spend_by_agent(day)
    caps = {
        a.name: money(a.spec.get("budget", {}).get("daily_usd"))
        for a in resources
        if a.kind == "Agent"
    }
    bars = [
        SpendBar(name, spent.get(name, Decimal(0)), caps.get(name))
        for name in sorted(set(caps) | set(spent))
    ]
    mission = _mission(resources)
    cap = money(mission.spec.get("budget", {}).get("daily_usd")) if mission else None
    return SpendBar("mission", sum(spent.values(), Decimal(0)), cap), bars


def overview(r: Readers, now: datetime, serve: ServeFacts | None) -> Overview:
    resources = r.dash.resources_of_kind(["Mission", "Agent"])
    mission = _mission(resources)
    counts = r.state.task_counts()
    mission_bar, agent_bars = spend_bars(r, now.date(), resources)
    runs: dict[str, int] = {}
    for run in r.state.workflow_runs():
        runs[run.status] = runs.get(run.status, 0) + 1
    return Overview(
        mission=mission.name if mission else None,
        mode=mission.spec.get("mode", "normal") if mission else None,
        applied_commit=r.state.applied_commit(),
        serial=r.state.serial(),
        tasks={s: counts.get(s, 0) for s in TASK_STATES},
        total_tasks=sum(counts.values()),
        workflow_runs=runs,
        day=now.date(),
        mission_spend=mission_bar,
        agent_spend=agent_bars,
        pending=pending_approvals(r.state, PENDING_SHOWN),
        events=r.dash.event_page(limit=15),
        last_seq=r.dash.last_event_seq(),
        overrides=overrides(r),
        serve=serve,
        exposure=exposure(
            [(a.name, a.spec) for a in resources if a.kind == "Agent"],
            mission.spec if mission else None,
        ),
        sync=sync_summary(r),
    )


@dataclass(frozen=True, slots=True)
class Counts:
    """The small live summary the stream sends whenever it changes."""

    tasks: dict[str, int]
    total: int
    pending: int
    last_seq: int


def counts(r: Readers) -> Counts:
    found = r.state.task_counts()
    return Counts(
        {s: found.get(s, 0) for s in TASK_STATES},
        sum(found.values()),
        pending_approvals(r.state, 0).count,
        r.dash.last_event_seq(),
    )


# --- approvals and events ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Approvals:
    pending: PendingApprovals  # what `mc approvals` lists: plan actions and waiting tasks
    decided: list[ApprovalRow]  # newest first: git and Telegram, accepted and rejected


def approvals(r: Readers, limit: int = 200) -> Approvals:
    return Approvals(pending_approvals(r.state, PENDING_SHOWN), r.dash.approvals(limit=limit))


@dataclass(frozen=True, slots=True)
class EventPage:
    events: list[Event]  # newest first
    last_seq: int
    before: int | None
    after: int | None
    subject: str | None
    kind: str | None
    limit: int
    older: int | None  # `before` for the next older page, if there is one
    newer: int | None  # `after` for the next newer page, if there is one


def event_page(
    r: Readers,
    *,
    before: int | None,
    after: int | None,
    subject: str | None,
    kind: str | None,
    limit: int,
) -> EventPage:
    limit = max(1, min(limit, MAX_PAGE_SIZE))
    found = r.dash.event_page(
        before=before, after=after, limit=limit, subject=subject or None, kind=kind or None
    )
    last = r.dash.last_event_seq()
    oldest = found[-1].seq if found else None
    newest = found[0].seq if found else None
    return EventPage(
        found,
        last,
        before,
        after,
        subject or None,
        kind or None,
        limit,
        oldest if oldest is not None and oldest > 1 and (after or len(found) == limit) else None,
        newest if newest is not None and newest < last and (before or after) else None,
    )
