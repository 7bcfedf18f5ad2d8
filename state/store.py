"""The two interfaces over the state file: StateReader for everyone, StateWriter for the applier."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from state.db import Database, open_database
from state.records import (
    AppliedResource,
    ApprovalRow,
    DropRow,
    Event,
    NewEvent,
    PendingAction,
    RunRow,
    TaskRow,
    WorkflowRunRow,
)

RUN_COLUMNS = (
    "id, task, attempt, agent, executor, state, owner_pid, pid, proc_start, workspace,"
    " started_at, ended_at, exit_code, status, error_class, error, cost_usd, tokens"
)


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


@dataclass(frozen=True, slots=True)
class ResourceWrite:
    kind: str
    name: str
    labels: dict[str, str]
    spec: dict[str, Any]
    digest: str
    path: str


@dataclass(frozen=True, slots=True)
class PendingWrite:
    key: str
    action: str
    digest: str | None
    risk: str
    reason: str


class StateReader:
    """Everything the CLI, dashboard and planner may ask of the observed state."""

    def __init__(self, db: Database) -> None:
        self.db = db

    @property
    def path(self) -> str:
        return self.db.path

    def serial(self) -> int:
        row = self.db.fetchone("SELECT value FROM meta WHERE key = 'serial'")
        return int(row[0]) if row else 0

    def resources(self) -> dict[str, AppliedResource]:
        rows = self.db.fetchall(
            "SELECT kind, name, digest, generation, spec, labels, path, commit FROM resources"
        )
        return {f"{r[0]}/{r[1]}": AppliedResource(*r) for r in rows}

    def resource_digests(self) -> dict[str, str]:
        """Kind/name -> digest of everything applied: all a plan needs for unchanged resources."""
        rows = self.db.fetchall("SELECT kind || '/' || name, digest FROM resources")
        return {r[0]: r[1] for r in rows}

    def resources_by_key(self, keys: Sequence[str]) -> dict[str, AppliedResource]:
        if not keys:
            return {}
        rows = self.db.fetchall(
            "SELECT kind, name, digest, generation, spec, labels, path, commit FROM resources"
            " WHERE kind || '/' || name IN (SELECT unnest(?))",
            [list(keys)],
        )
        return {f"{r[0]}/{r[1]}": AppliedResource(*r) for r in rows}

    def resource(self, kind: str, name: str) -> AppliedResource | None:
        row = self.db.fetchone(
            "SELECT kind, name, digest, generation, spec, labels, path, commit FROM resources"
            " WHERE kind = ? AND name = ?",
            [kind, name],
        )
        return AppliedResource(*row) if row else None

    def applied_commit(self) -> str | None:
        row = self.db.fetchone("SELECT value FROM meta WHERE key = 'applied_commit'")
        return row[0] if row else None

    def pending(self) -> list[PendingAction]:
        rows = self.db.fetchall(
            "SELECT key, action, digest, risk, reason, commit, since FROM pending ORDER BY key"
        )
        return [PendingAction(*r) for r in rows]

    def events(
        self, *, since: datetime | None = None, after_seq: int = 0, limit: int = 100
    ) -> list[Event]:
        """The newest `limit` events (after `since` / `after_seq`), oldest first."""
        rows = self.db.fetchall(
            "SELECT * FROM (SELECT seq, time, actor, kind, subject, data, commit FROM events"
            " WHERE seq > ? AND time >= ? ORDER BY seq DESC LIMIT ?) ORDER BY seq",
            [after_seq, since or datetime(1970, 1, 1), limit],
        )
        return [Event(r[0], r[1], r[2], r[3], r[4], json.loads(r[5]), r[6]) for r in rows]

    def task_states(self) -> dict[str, str]:
        return {r[0]: r[1] for r in self.db.fetchall("SELECT name, state FROM tasks")}

    def task_states_of(self, names: Sequence[str]) -> dict[str, str]:
        if not names:
            return {}
        rows = self.db.fetchall(
            "SELECT name, state FROM tasks WHERE name IN (SELECT unnest(?))", [list(names)]
        )
        return {r[0]: r[1] for r in rows}

    def tasks_in(self, states: Sequence[str], limit: int = 20) -> list[TaskRow]:
        """Tasks in some states, most recently changed first."""
        rows = self.db.fetchall(
            "SELECT name, state, reason, agent, attempts, abandoned, next_attempt_at, output,"
            " outputs, created_at, updated_at, workflow_run, step, feedback, coalesce(rework, 0)"
            " FROM tasks WHERE state IN (SELECT unnest(?)) ORDER BY updated_at DESC, name LIMIT ?",
            [list(states), limit],
        )
        return [_task_row(r) for r in rows]

    def task_counts(self) -> dict[str, int]:
        rows = self.db.fetchall("SELECT state, count(*) FROM tasks GROUP BY state")
        return {r[0]: int(r[1]) for r in rows}

    def tasks(self, names: Sequence[str] | None = None) -> list[TaskRow]:
        sql = (
            "SELECT name, state, reason, agent, attempts, abandoned, next_attempt_at, output,"
            " outputs, created_at, updated_at, workflow_run, step, feedback, coalesce(rework, 0)"
            " FROM tasks"
        )
        rows = (
            self.db.fetchall(sql + " WHERE name IN (SELECT unnest(?)) ORDER BY name", [list(names)])
            if names is not None
            else self.db.fetchall(sql + " ORDER BY name")
        )
        return [_task_row(r) for r in rows]

    # --- execution ---------------------------------------------------------------------------

    def runs(
        self, *, task: str | None = None, states: Sequence[str] | None = None, limit: int = 1000
    ) -> list[RunRow]:
        """Runs, newest first, optionally of one task or in some states."""
        where: list[str] = ["1 = 1"]
        params: list[Any] = []
        if task is not None:
            where.append("task = ?")
            params.append(task)
        if states is not None:
            where.append("state IN (SELECT unnest(?))")
            params.append(list(states))
        rows = self.db.fetchall(
            f"SELECT {RUN_COLUMNS} FROM runs WHERE {' AND '.join(where)}"
            " ORDER BY started_at DESC, id DESC LIMIT ?",
            [*params, limit],
        )
        return [RunRow(*r) for r in rows]

    def run(self, run_id: str) -> RunRow | None:
        row = self.db.fetchone(f"SELECT {RUN_COLUMNS} FROM runs WHERE id = ?", [run_id])
        return RunRow(*row) if row else None

    def run_counts(self, tasks: Sequence[str] | None = None) -> dict[str, int]:
        """Task -> its attempts: THE definition every surface shows. An attempt is one run of
        the task's agent, numbered like its workspace `.mc/work/<task>/<n>`; retries, rework
        rounds and abandoned runs all count. (`tasks.attempts` is another thing: the tries
        counted against `retry.max_attempts`, which a send-back or `mc retry` resets.)"""
        if tasks is None:
            rows = self.db.fetchall("SELECT task, count(*) FROM runs GROUP BY task")
        else:
            rows = self.db.fetchall(
                "SELECT task, count(*) FROM runs WHERE task IN (SELECT unnest(?)) GROUP BY task",
                [list(tasks)],
            )
        return {r[0]: int(r[1]) for r in rows}

    def recent_outcomes(self, per_agent: int = 10) -> dict[str, list[tuple[str, datetime]]]:
        """The last ended runs of each agent, newest first: (status, started_at). A verifier's
        verdict on another step (error class `verdict`) is not a run that failed: left out."""
        rows = self.db.fetchall(
            "SELECT agent, status, started_at FROM (SELECT agent, status, started_at,"
            " row_number() OVER (PARTITION BY agent ORDER BY started_at DESC, id DESC) AS n"
            " FROM runs WHERE ended_at IS NOT NULL AND coalesce(error_class, '') <> 'verdict')"
            " WHERE n <= ? ORDER BY agent, n",
            [per_agent],
        )
        out: dict[str, list[tuple[str, datetime]]] = {}
        for agent, status, started in rows:
            out.setdefault(agent, []).append((status, started))
        return out

    def spend_by_agent(self, day: date) -> dict[str, Decimal]:
        rows = self.db.fetchall(
            "SELECT agent, sum(cost_usd) FROM ledger WHERE day = ? GROUP BY agent", [day]
        )
        return {r[0]: Decimal(r[1]) for r in rows}

    def spend_since(self, day: date) -> list[tuple[str, date, Decimal]]:
        rows = self.db.fetchall(
            "SELECT agent, day, sum(cost_usd) FROM ledger WHERE day >= ? GROUP BY agent, day"
            " ORDER BY day, agent",
            [day],
        )
        return [(r[0], r[1], Decimal(r[2])) for r in rows]

    def memory(self, scope_prefix: str = "") -> dict[str, dict[str, Any]]:
        rows = self.db.fetchall(
            "SELECT scope, key, value FROM memory WHERE starts_with(scope, ?) ORDER BY scope, key",
            [scope_prefix],
        )
        out: dict[str, dict[str, Any]] = {}
        for scope, key, value in rows:
            out.setdefault(scope, {})[key] = json.loads(value)
        return out

    def drops(self, task: str | None = None) -> list[DropRow]:
        """Content drops, of one task or all; oldest first."""
        sql = "SELECT run_id, task, path, sha256, size, media_type, time FROM drops"
        rows = (
            self.db.fetchall(sql + " WHERE task = ? ORDER BY time, path", [task])
            if task is not None
            else self.db.fetchall(sql + " ORDER BY time, path")
        )
        return [DropRow(*r) for r in rows]

    def workflow_runs(self, names: Sequence[str] | None = None) -> list[WorkflowRunRow]:
        sql = (
            "SELECT name, workflow, workflow_digest, workflow_spec, inputs, retry_nonce, status,"
            " outputs, created_at, updated_at FROM workflow_runs"
        )
        rows = (
            self.db.fetchall(sql + " WHERE name IN (SELECT unnest(?)) ORDER BY name", [list(names)])
            if names is not None
            else self.db.fetchall(sql + " ORDER BY created_at, name")
        )
        return [
            WorkflowRunRow(
                r[0],
                r[1],
                r[2],
                json.loads(r[3]),
                json.loads(r[4]),
                r[5],
                r[6],
                json.loads(r[7]) if r[7] is not None else None,
                r[8],
                r[9],
            )
            for r in rows
        ]

    def approvals(
        self, *, status: str | None = None, channel: str | None = None
    ) -> list[ApprovalRow]:
        where, params = ["1 = 1"], []
        if status is not None:
            where.append("status = ?")
            params.append(status)
        if channel is not None:
            where.append("channel = ?")
            params.append(channel)
        rows = self.db.fetchall(
            "SELECT id, target, digest, approver, decision, channel, status, reason, evidence,"
            " decided_at"
            f" FROM approvals WHERE {' AND '.join(where)} ORDER BY decided_at, id",
            params,
        )
        return [
            ApprovalRow(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], json.loads(r[8]), r[9])
            for r in rows
        ]

    def overrides(self) -> dict[str, tuple[str, str, str | None, datetime]]:
        """Emergency overrides (mode=paused from Telegram): key -> (value, actor, reason, at)."""
        rows = self.db.fetchall("SELECT key, value, actor, reason, set_at FROM overrides")
        return {r[0]: (r[1], r[2], r[3], r[4]) for r in rows}

    def agent_overrides(self) -> dict[str, tuple[str, str | None]]:
        """Observed agent status set by the system (e.g. the loop breaker's quarantine)."""
        rows = self.db.fetchall("SELECT name, status, reason FROM agents")
        return {r[0]: (r[1], r[2]) for r in rows}

    def agent_status_rows(self) -> dict[str, tuple[str, str | None, str | None, datetime]]:
        """name -> (status, reason, agent digest it was set for, when)."""
        rows = self.db.fetchall("SELECT name, status, reason, digest, updated_at FROM agents")
        return {r[0]: (r[1], r[2], r[3], r[4]) for r in rows}


def _task_row(r: tuple[Any, ...]) -> TaskRow:
    output = json.loads(r[7]) if r[7] is not None else None
    outputs = json.loads(r[8]) if r[8] is not None else None
    return TaskRow(r[0], r[1], r[2], r[3], r[4], r[5], r[6], output, outputs, *r[9:])


class StateWriter(StateReader):
    """Writes, grouped by the caller into transactions; only apply and runtime hold one."""

    def bump_serial(self, by: int = 1) -> int:
        row = self.db.fetchone(
            "UPDATE meta SET value = CAST(CAST(value AS BIGINT) + ? AS VARCHAR)"
            " WHERE key = 'serial' RETURNING value",
            [by],
        )
        assert row is not None
        return int(row[0])

    def set_meta(self, key: str, value: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", [key, value])

    def upsert_resources(
        self, writes: Sequence[ResourceWrite], commit: str | None, now: datetime
    ) -> None:
        if not writes:
            return
        self.db.execute(
            "INSERT OR REPLACE INTO resources"
            " SELECT w.kind, w.name, w.labels::JSON, w.spec::JSON, w.digest, w.path, ?,"
            " coalesce(r.generation, 0) + 1, ?"
            " FROM (SELECT unnest(?) AS kind, unnest(?) AS name, unnest(?) AS labels,"
            " unnest(?) AS spec, unnest(?) AS digest, unnest(?) AS path) w"
            " LEFT JOIN resources r ON r.kind = w.kind AND r.name = w.name",
            [
                commit,
                now,
                [w.kind for w in writes],
                [w.name for w in writes],
                [_json(w.labels) for w in writes],
                [_json(w.spec) for w in writes],
                [w.digest for w in writes],
                [w.path for w in writes],
            ],
        )

    def delete_resources(self, keys: Sequence[tuple[str, str]]) -> None:
        if keys:
            self.db.execute(
                "DELETE FROM resources WHERE (kind, name) IN (SELECT (unnest(?), unnest(?)))",
                [[k for k, _ in keys], [n for _, n in keys]],
            )

    def replace_pending(
        self, pending: Sequence[PendingWrite], commit: str | None, now: datetime
    ) -> None:
        """Pending approvals mirror the latest plan: keep `since` for ones still waiting."""
        keep = self.db.fetchall("SELECT key, digest, since FROM pending")
        since = {(k, d): s for k, d, s in keep}
        self.db.execute("DELETE FROM pending")
        if pending:
            self.db.execute(
                "INSERT INTO pending SELECT unnest(?), unnest(?), unnest(?), unnest(?),"
                " unnest(?), ?, unnest(?)",
                [
                    [p.key for p in pending],
                    [p.action for p in pending],
                    [p.digest for p in pending],
                    [p.risk for p in pending],
                    [p.reason for p in pending],
                    commit,
                    [since.get((p.key, p.digest), now) for p in pending],
                ],
            )

    def append_events(self, events: Sequence[NewEvent], now: datetime) -> None:
        if not events:
            return
        self.db.execute(
            "INSERT INTO events (time, actor, kind, subject, data, commit)"
            " SELECT ?, unnest(?), unnest(?), unnest(?), unnest(?)::JSON, unnest(?)",
            [
                now,
                [e.actor for e in events],
                [e.kind for e in events],
                [e.subject for e in events],
                [_json(e.data) for e in events],
                [e.commit for e in events],
            ],
        )

    def create_tasks(self, names: Sequence[str], now: datetime) -> None:
        """New tasks start in INBOX; a name that already has a row keeps its history."""
        if names:
            self.db.execute(
                "INSERT INTO tasks (name, state, created_at, updated_at)"
                " SELECT unnest(?), 'INBOX', ?, ? ON CONFLICT DO NOTHING",
                [list(names), now, now],
            )

    def start_workflow_run(
        self, row: WorkflowRunRow, steps: Sequence[tuple[str, str]], now: datetime
    ) -> None:
        """Pin the run's workflow and (re)create its step tasks, fresh, in INBOX."""
        self.db.execute(
            "INSERT OR REPLACE INTO workflow_runs VALUES (?, ?, ?, ?::JSON, ?::JSON, ?, ?, NULL,"
            " ?, ?)",
            [
                row.name,
                row.workflow,
                row.workflow_digest,
                _json(row.workflow_spec),
                _json(row.inputs),
                row.retry_nonce,
                row.status,
                now,
                now,
            ],
        )
        self.db.execute(
            "INSERT INTO tasks (name, state, created_at, updated_at, workflow_run, step, rework)"
            " SELECT unnest(?), 'INBOX', ?, ?, ?, unnest(?), 0 ON CONFLICT (name) DO UPDATE SET"
            " state = 'INBOX', reason = 'run started anew', attempts = 0, abandoned = 0,"
            " next_attempt_at = NULL, output = NULL, outputs = NULL, feedback = NULL, rework = 0,"
            " updated_at = excluded.updated_at",
            [[t for t, _ in steps], now, now, row.name, [s for _, s in steps]],
        )

    def set_workflow_run(self, name: str, status: str, nonce: int | None, now: datetime) -> None:
        self.db.execute(
            "UPDATE workflow_runs SET status = ?, retry_nonce = coalesce(?, retry_nonce),"
            " updated_at = ? WHERE name = ?",
            [status, nonce, now, name],
        )

    def record_approvals(self, rows: Sequence[ApprovalRow], now: datetime) -> None:
        if rows:
            self.db.execute(
                "INSERT OR REPLACE INTO approvals SELECT unnest(?), unnest(?), unnest(?),"
                " unnest(?::VARCHAR[]), unnest(?), unnest(?), unnest(?), unnest(?::VARCHAR[]),"
                " unnest(?)::JSON, unnest(?::TIMESTAMP[]), ?",
                [
                    [r.id for r in rows],
                    [r.target for r in rows],
                    [r.digest for r in rows],
                    [r.approver for r in rows],
                    [r.decision for r in rows],
                    [r.channel for r in rows],
                    [r.status for r in rows],
                    [r.reason for r in rows],
                    [_json(r.evidence) for r in rows],
                    [r.at for r in rows],
                    now,
                ],
            )

    def forget_approvals(self, ids: Sequence[str]) -> None:
        if ids:
            self.db.execute("DELETE FROM approvals WHERE id IN (SELECT unnest(?))", [list(ids)])

    def set_override(
        self, key: str, value: str | None, actor: str, reason: str | None, now: datetime
    ) -> None:
        if value is None:
            self.db.execute("DELETE FROM overrides WHERE key = ?", [key])
        else:
            self.db.execute(
                "INSERT OR REPLACE INTO overrides VALUES (?, ?, ?, ?, ?)",
                [key, value, actor, reason, now],
            )

    def record_quarantine(
        self, agent: str, reason: str, digest: str, actor: str, now: datetime
    ) -> None:
        """Quarantine this exact agent spec (a new spec in git lifts it), with its event."""
        self.db.execute(
            "INSERT OR REPLACE INTO agents (name, status, reason, updated_at, digest)"
            " VALUES (?, 'quarantined', ?, ?, ?)",
            [agent, reason, now, digest],
        )
        self.append_events(
            [NewEvent(actor, "agent.quarantined", f"Agent/{agent}", {"reason": reason})], now
        )

    def cancel_tasks(self, names: Sequence[str], reason: str, now: datetime) -> None:
        if names:
            self.db.execute(
                "UPDATE tasks SET state = 'CANCELED', reason = ?, updated_at = ?"
                " WHERE name IN (SELECT unnest(?)) AND state NOT IN ('DONE', 'FAILED', 'CANCELED')",
                [reason, now, list(names)],
            )


class State:
    """An open state file: `reader` always, `writer` only when opened for writing."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.reader = StateReader(db)
        self._writer = StateWriter(db) if db.writable else None

    @classmethod
    def open(cls, path: Path | None, *, write: bool) -> State:
        return cls(open_database(path, write=write))

    @property
    def writer(self) -> StateWriter:
        if self._writer is None:
            raise RuntimeError("state was opened read-only")
        return self._writer

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> State:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
