"""Tasks and workflow runs: read by planner, engine and surfaces; written by apply and commands."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from state.records import TaskRow, WorkflowRunRow
from state.table_store import TableStore, compact_json

TASK_COLUMNS = (
    "name, state, reason, agent, attempts, abandoned, next_attempt_at, output,"
    " outputs, created_at, updated_at, workflow_run, step, feedback, coalesce(rework, 0)"
)
WORKFLOW_RUN_COLUMNS = (
    "name, workflow, workflow_digest, workflow_spec, inputs, retry_nonce, status,"
    " outputs, created_at, updated_at"
)


class TaskReader(TableStore):
    """Tasks by name or state, their counts, and the workflow runs they are steps of."""

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
            f"SELECT {TASK_COLUMNS}"
            " FROM tasks WHERE state IN (SELECT unnest(?)) ORDER BY updated_at DESC, name LIMIT ?",
            [list(states), limit],
        )
        return [_task_row(r) for r in rows]

    def task_counts(self) -> dict[str, int]:
        rows = self.db.fetchall("SELECT state, count(*) FROM tasks GROUP BY state")
        return {r[0]: int(r[1]) for r in rows}

    def tasks(self, names: Sequence[str] | None = None) -> list[TaskRow]:
        sql = f"SELECT {TASK_COLUMNS} FROM tasks"
        rows = (
            self.db.fetchall(sql + " WHERE name IN (SELECT unnest(?)) ORDER BY name", [list(names)])
            if names is not None
            else self.db.fetchall(sql + " ORDER BY name")
        )
        return [_task_row(r) for r in rows]

    def workflow_runs(self, names: Sequence[str] | None = None) -> list[WorkflowRunRow]:
        sql = f"SELECT {WORKFLOW_RUN_COLUMNS} FROM workflow_runs"
        rows = (
            self.db.fetchall(sql + " WHERE name IN (SELECT unnest(?)) ORDER BY name", [list(names)])
            if names is not None
            else self.db.fetchall(sql + " ORDER BY created_at, name")
        )
        return [_workflow_run_row(r) for r in rows]


def _task_row(r: tuple[Any, ...]) -> TaskRow:
    output = json.loads(r[7]) if r[7] is not None else None
    outputs = json.loads(r[8]) if r[8] is not None else None
    return TaskRow(r[0], r[1], r[2], r[3], r[4], r[5], r[6], output, outputs, *r[9:])


def _workflow_run_row(r: tuple[Any, ...]) -> WorkflowRunRow:
    outputs = json.loads(r[7]) if r[7] is not None else None
    return WorkflowRunRow(
        r[0], r[1], r[2], json.loads(r[3]), json.loads(r[4]), r[5], r[6], outputs, r[8], r[9]
    )


class TaskWriter(TableStore):
    """Apply's task writes outside a write batch: creation, workflow-run starts, cancelation."""

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
                compact_json(row.workflow_spec),
                compact_json(row.inputs),
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

    def cancel_tasks(self, names: Sequence[str], reason: str, now: datetime) -> None:
        if names:
            self.db.execute(
                "UPDATE tasks SET state = 'CANCELED', reason = ?, updated_at = ?"
                " WHERE name IN (SELECT unnest(?)) AND state NOT IN ('DONE', 'FAILED', 'CANCELED')",
                [reason, now, list(names)],
            )
