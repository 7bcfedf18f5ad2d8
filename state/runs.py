"""The execution family (runs, drops, ledger): read by the engine, CLI and dashboard.

Written only through `state.write_batch`, in the engine's batches."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from specs.money import normalized
from state.records import DropRow, RunRow
from state.table_store import TableStore

RUN_COLUMNS = (
    "id, task, attempt, agent, executor, state, owner_pid, pid, proc_start, workspace,"
    " started_at, ended_at, exit_code, status, error_class, error, cost_usd, tokens"
)


def _run_row(r: Sequence[Any]) -> RunRow:
    """A row of RUN_COLUMNS; its cost without the column's trailing zeros (specs/money.py)."""
    row = RunRow(*r)
    return replace(row, cost_usd=normalized(Decimal(row.cost_usd)))


class RunReader(TableStore):
    """Agent runs, their attempt counts and recent outcomes, content drops and spend."""

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
        return [_run_row(r) for r in rows]

    def run(self, run_id: str) -> RunRow | None:
        row = self.db.fetchone(f"SELECT {RUN_COLUMNS} FROM runs WHERE id = ?", [run_id])
        return _run_row(row) if row else None

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

    def drops(
        self, task: str | None = None, *, limit: int | None = None, offset: int = 0
    ) -> list[DropRow]:
        """Content drops, of one task or all; oldest first; a page of them with `limit`."""
        sql = "SELECT run_id, task, path, sha256, size, media_type, time FROM drops"
        params: list[object] = []
        if task is not None:
            sql += " WHERE task = ?"
            params.append(task)
        sql += " ORDER BY time, path"
        if limit is not None:
            sql += " LIMIT ? OFFSET ?"
            params += [limit, offset]
        return [DropRow(*r) for r in self.db.fetchall(sql, params)]

    def drop_count(self, task: str) -> int:
        """How many content drops the task's runs left (all its runs)."""
        row = self.db.fetchall("SELECT count(*) FROM drops WHERE task = ?", [task])
        return int(row[0][0])

    def spend_by_agent(self, day: date) -> dict[str, Decimal]:
        rows = self.db.fetchall(
            "SELECT agent, sum(cost_usd) FROM ledger WHERE day = ? GROUP BY agent", [day]
        )
        return {r[0]: normalized(Decimal(r[1])) for r in rows}

    def spend_since(self, day: date) -> list[tuple[str, date, Decimal]]:
        rows = self.db.fetchall(
            "SELECT agent, day, sum(cost_usd) FROM ledger WHERE day >= ? GROUP BY agent, day"
            " ORDER BY day, agent",
            [day],
        )
        return [(r[0], r[1], normalized(Decimal(r[2]))) for r in rows]
