"""Read-only queries only the dashboard needs: filtered task pages, event pages, agent load.

Everything here is sized for big states (100k tasks): filtering, counting and paging happen in
SQL, and nothing loads a whole table into Python. Used by `api/` next to `StateReader`.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from state.db import Database
from state.records import AppliedResource, ApprovalRow, Event
from state.runs import RunReader
from state.store import StateReader

IN_FLIGHT = ("LAUNCHING", "RUNNING")  # run states (not task states) of a run under way


@dataclass(frozen=True, slots=True)
class TaskFilter:
    """Which tasks a list shows; None/empty means any."""

    state: str | None = None
    agent: str | None = None
    label_key: str | None = None
    label_value: str | None = None  # None with a key: any task that has the label
    search: str | None = None  # substring of the name or the title, case-insensitive
    workflow_run: str | None = None


@dataclass(frozen=True, slots=True)
class TaskListRow:
    name: str
    state: str
    reason: str | None
    title: str | None
    agent: str | None
    labels: dict[str, str]
    attempts: int  # runs of its agent so far (`StateReader.run_counts`)
    updated_at: datetime
    workflow_run: str | None


@dataclass(frozen=True, slots=True)
class TaskPage:
    rows: list[TaskListRow]
    total: int
    offset: int
    limit: int


@dataclass(frozen=True, slots=True)
class RunningRun:
    """A run in flight: whose, since when, and where its workspace (and heartbeat) is."""

    id: str
    agent: str
    task: str
    started_at: datetime
    workspace: str | None


@dataclass(frozen=True, slots=True)
class FailedRun:
    id: str
    agent: str
    task: str
    attempt: int
    status: str | None
    error_class: str | None
    error: str | None
    started_at: datetime


def _label_path(key: str) -> str:
    """A JSON path naming `key` literally (dots, slashes and quotes included)."""
    return '$."' + key.replace("\\", "\\\\").replace('"', '\\"') + '"'


# Tasks declared in git have a Task resource (title, labels, agent); workflow steps do not.
_TASK_FROM = " FROM tasks t LEFT JOIN resources r ON r.kind = 'Task' AND r.name = t.name"
_TASK_AGENT = "coalesce(t.agent, json_extract_string(r.spec, '$.agent'))"


class DashboardReader:
    """Queries over the same `Database` a `StateReader` reads; never writes."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # --- tasks ---------------------------------------------------------------------------------

    def _where(self, f: TaskFilter) -> tuple[str, list[Any], bool]:
        """SQL conditions for `f`, their parameters, and whether they read the resource."""
        where: list[str] = []
        params: list[Any] = []
        if f.state:
            where.append("t.state = ?")
            params.append(f.state)
        if f.agent:  # the assigned agent, else the declared one (JSON read only when needed)
            where.append(
                "(t.agent = ? OR (t.agent IS NULL AND json_extract_string(r.spec, '$.agent') = ?))"
            )
            params += [f.agent, f.agent]
        if f.label_key:
            if f.label_value is None:
                where.append("json_exists(r.labels, ?)")
                params.append(_label_path(f.label_key))
            else:
                where.append("json_extract_string(r.labels, ?) = ?")
                params += [_label_path(f.label_key), f.label_value]
        if f.search:
            where.append(
                "(contains(lower(t.name), ?)"
                " OR contains(lower(json_extract_string(r.spec, '$.title')), ?))"
            )
            params += [f.search.lower()] * 2
        if f.workflow_run:
            where.append("t.workflow_run = ?")
            params.append(f.workflow_run)
        joined = bool(f.agent or f.label_key or f.search)
        return (" WHERE " + " AND ".join(where)) if where else "", params, joined

    def task_page(self, f: TaskFilter, *, limit: int, offset: int) -> TaskPage:
        """One page of tasks, most recently changed first, and how many match in all.

        One scan picks the page and counts the matches (joining the resources only when the
        filter reads them); only the page's rows are then joined for titles and labels."""
        where, params, joined = self._where(f)
        source = _TASK_FROM if joined else " FROM tasks t"
        rows = self.db.fetchall(
            "WITH page AS (SELECT t.name, count(*) OVER () AS total"
            + source
            + where
            + " ORDER BY t.updated_at DESC, t.name LIMIT ? OFFSET ?)"
            " SELECT t.name, t.state, t.reason, json_extract_string(r.spec, '$.title'),"
            f" {_TASK_AGENT}, r.labels, t.updated_at, t.workflow_run, page.total"
            " FROM page JOIN tasks t ON t.name = page.name"
            " LEFT JOIN resources r ON r.kind = 'Task' AND r.name = t.name"
            " ORDER BY t.updated_at DESC, t.name",
            [*params, limit, offset],
        )
        if rows:
            total = int(rows[0][-1])
        else:  # past the last page (or nothing matches): count on its own
            row = self.db.fetchone("SELECT count(*)" + source + where, params)
            total = int(row[0]) if row else 0
        attempts = RunReader(self.db).run_counts([r[0] for r in rows])
        return TaskPage(
            [
                TaskListRow(
                    name=r[0],
                    state=r[1],
                    reason=r[2],
                    title=r[3],
                    agent=r[4],
                    labels=json.loads(r[5]) if r[5] else {},
                    attempts=attempts.get(r[0], 0),
                    updated_at=r[6],
                    workflow_run=r[7],
                )
                for r in rows
            ],
            total,
            offset,
            limit,
        )

    def task_agents(self) -> list[str]:
        """Applied agents and any agent a task was assigned to (for the filter menu)."""
        rows = self.db.fetchall(
            "SELECT name FROM resources WHERE kind = 'Agent'"
            " UNION SELECT DISTINCT agent FROM tasks WHERE agent IS NOT NULL ORDER BY 1"
        )
        return [r[0] for r in rows]

    def step_states(self, run: str) -> dict[str, tuple[str, str | None, int]]:
        """step id -> (state, reason, attempts) of one workflow run's step tasks."""
        rows = self.db.fetchall(
            "SELECT step, state, reason, name FROM tasks WHERE workflow_run = ?", [run]
        )
        attempts = RunReader(self.db).run_counts([r[3] for r in rows])
        return {r[0]: (r[1], r[2], attempts.get(r[3], 0)) for r in rows}

    def run_progress(self) -> dict[str, dict[str, int]]:
        """workflow run -> step state -> number of steps."""
        rows = self.db.fetchall(
            "SELECT workflow_run, state, count(*) FROM tasks WHERE workflow_run IS NOT NULL"
            " GROUP BY workflow_run, state"
        )
        out: dict[str, dict[str, int]] = {}
        for run, state, n in rows:
            out.setdefault(run, {})[state] = int(n)
        return out

    def dependents(self, name: str) -> list[str]:
        """Declared tasks whose `depends_on` names this task (the links back from a task)."""
        rows = self.db.fetchall(
            "SELECT name FROM resources WHERE kind = 'Task'"
            " AND list_contains(json_extract_string(spec, '$.depends_on[*]'), ?) ORDER BY name",
            [name],
        )
        return [r[0] for r in rows]

    # --- resources -----------------------------------------------------------------------------

    def resource_count(self) -> int:
        """How many resources are applied (all kinds)."""
        row = self.db.fetchone("SELECT count(*) FROM resources")
        return int(row[0]) if row else 0

    def resources_of_kind(self, kinds: Sequence[str]) -> list[AppliedResource]:
        """Applied resources of some kinds (never all 100k tasks for one agent list)."""
        rows = self.db.fetchall(
            "SELECT kind, name, digest, generation, spec, labels, path, commit FROM resources"
            " WHERE kind IN (SELECT unnest(?)) ORDER BY kind, name",
            [list(kinds)],
        )
        return [AppliedResource(*r) for r in rows]

    # --- events --------------------------------------------------------------------------------

    def last_event_seq(self) -> int:
        row = self.db.fetchone("SELECT coalesce(max(seq), 0) FROM events")
        return int(row[0]) if row else 0

    def event_page(
        self,
        *,
        before: int | None = None,
        after: int | None = None,
        limit: int = 50,
        subject: str | None = None,
        kind: str | None = None,
    ) -> list[Event]:
        """Events newest first: below `before`, or the oldest `limit` above `after`."""
        where = ["1 = 1"]
        params: list[Any] = []
        if before is not None:
            where.append("seq < ?")
            params.append(before)
        if after is not None:
            where.append("seq > ?")
            params.append(after)
        if subject:
            where.append("subject = ?")
            params.append(subject)
        if kind:
            where.append("kind = ?")
            params.append(kind)
        order = "ASC" if after is not None and before is None else "DESC"
        rows = self.db.fetchall(
            "SELECT seq, time, actor, kind, subject, data, commit FROM events"
            f" WHERE {' AND '.join(where)} ORDER BY seq {order} LIMIT ?",
            [*params, limit],
        )
        events = [Event(r[0], r[1], r[2], r[3], r[4], json.loads(r[5]), r[6]) for r in rows]
        return events if order == "DESC" else events[::-1]

    # --- approvals -----------------------------------------------------------------------------

    def approvals(
        self, *, targets: Sequence[str] | None = None, limit: int = 200
    ) -> list[ApprovalRow]:
        """Approval decisions as judged (accepted or rejected, with evidence), newest first."""
        where, params = "", []
        if targets is not None:
            where, params = " WHERE target IN (SELECT unnest(?))", [list(targets)]
        rows = self.db.fetchall(
            "SELECT id, target, digest, approver, decision, channel, status, reason, evidence,"
            f" decided_at FROM approvals{where} ORDER BY decided_at DESC, id LIMIT ?",
            [*params, limit],
        )
        return [
            ApprovalRow(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], json.loads(r[8]), r[9])
            for r in rows
        ]

    # --- runs, agents, spend -------------------------------------------------------------------

    def running_runs(self) -> list[RunningRun]:
        rows = self.db.fetchall(
            "SELECT id, agent, task, started_at, workspace FROM runs"
            " WHERE state IN (SELECT unnest(?)) ORDER BY started_at, id",
            [list(IN_FLIGHT)],
        )
        return [RunningRun(*r) for r in rows]

    def recent_failures(self, statuses: Sequence[str], per_agent: int) -> list[FailedRun]:
        """The newest ended runs of each agent that ended in one of `statuses`, newest first."""
        rows = self.db.fetchall(
            "SELECT id, agent, task, attempt, status, error_class, error, started_at FROM ("
            " SELECT *, row_number() OVER (PARTITION BY agent ORDER BY started_at DESC, id DESC)"
            " AS n FROM runs WHERE ended_at IS NOT NULL AND status IN (SELECT unnest(?)))"
            " WHERE n <= ? ORDER BY agent, n",
            [list(statuses), per_agent],
        )
        return [FailedRun(*r) for r in rows]

    def ended_run_counts(self) -> dict[str, int]:
        """Ended runs by how they ended (the agent's status, or `unknown`)."""
        rows = self.db.fetchall(
            "SELECT coalesce(status, 'unknown'), count(*) FROM runs"
            " WHERE ended_at IS NOT NULL GROUP BY 1"
        )
        return {r[0]: int(r[1]) for r in rows}

    def drop_by_sha(self, sha256: str) -> tuple[str, str] | None:
        """(path in out/, media type) of a recorded drop with this content."""
        row = self.db.fetchone(
            "SELECT path, media_type FROM drops WHERE sha256 = ? ORDER BY time LIMIT 1", [sha256]
        )
        return (row[0], row[1]) if row else None

    def spend_on(self, day: date) -> Decimal:
        row = self.db.fetchone("SELECT coalesce(sum(cost_usd), 0) FROM ledger WHERE day = ?", [day])
        return Decimal(row[0]) if row else Decimal(0)


def cursor_readers(
    db: Database,
) -> Callable[[], AbstractContextManager[tuple[StateReader, DashboardReader]]]:
    """Readers over fresh cursors of an open connection, one pair per request: how the
    dashboard reads the state `mc serve` holds open for writing (a DuckDB cursor is a
    connection of its own to the same database, safe to use from another thread).

    Call it in the thread that owns `db`: request cursors branch off one root cursor made
    here, under a lock, so request threads never touch the writer's connection object."""
    root = db.con.cursor()
    lock = threading.Lock()

    @contextmanager
    def open_readers() -> Iterator[tuple[StateReader, DashboardReader]]:
        with lock:
            con = root.cursor()
        cursor = Database(db.path, con, writable=False)
        try:
            yield StateReader(cursor), DashboardReader(cursor)
        finally:
            cursor.close()

    return open_readers
