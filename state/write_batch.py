"""Write batches: what one engine tick or one apply decided, each list one statement, all in one
transaction; built by engine/enact, plan/apply, plan/task_effects and commands."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from state.db import Database
from state.records import NewEvent


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value, sort_keys=True, default=str)


@dataclass(frozen=True, slots=True)
class Hop:
    """One state change of a task, written as one event with its own reason and key."""

    source: str
    target: str
    reason: str
    key: str


@dataclass(frozen=True, slots=True)
class TaskWrite:
    """A checked transition (source -> target, idempotency key) plus the fields it sets."""

    name: str
    source: str
    target: str
    key: str
    actor: str
    reason: str
    agent: str | None = None
    attempts: int | None = None
    abandoned: int | None = None
    next_attempt_at: datetime | None = None
    output: Any = None
    outputs: Any = None
    commit: str | None = None
    feedback: str | None = None  # a verifier's feedback for the step it sends back
    rework: int | None = None
    earlier: tuple[Hop, ...] = ()  # transitions merged from writes before this one

    def hops(self) -> list[Hop]:
        """Every state change this write stands for, in order, each with its own key."""
        source = self.earlier[-1].target if self.earlier else self.source
        return [*self.earlier, Hop(source, self.target, self.reason, self.key)]

    def then(self, later: TaskWrite) -> TaskWrite:
        """One write for two successive transitions of a task within one batch."""
        merged = {
            f: getattr(later, f) if getattr(later, f) is not None else getattr(self, f)
            for f in (
                "agent",
                "attempts",
                "abandoned",
                "output",
                "outputs",
                "commit",
                "feedback",
                "rework",
            )
        }
        return dataclasses.replace(later, source=self.source, earlier=tuple(self.hops()), **merged)


@dataclass(frozen=True, slots=True)
class RunStart:
    id: str
    task: str
    attempt: int
    agent: str
    executor: str
    owner_pid: int
    workspace: str
    started_at: datetime


@dataclass(frozen=True, slots=True)
class RunUpdate:
    """Fields to set on a run; None leaves a field as it is."""

    id: str
    state: str
    pid: int | None = None
    proc_start: int | None = None
    ended_at: datetime | None = None
    exit_code: int | None = None
    status: str | None = None
    error_class: str | None = None
    error: str | None = None
    cost_usd: Decimal | None = None
    tokens: int | None = None


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    time: datetime
    day: date
    run_id: str
    agent: str
    task: str
    cost_usd: Decimal


@dataclass(frozen=True, slots=True)
class MemoryWrite:
    scope: str  # agent:<name> | task:<name>
    key: str
    value: Any  # None deletes the key


@dataclass(frozen=True, slots=True)
class DropWrite:
    run_id: str
    task: str
    path: str
    sha256: str
    size: int
    media_type: str


@dataclass(frozen=True, slots=True)
class AgentStatusWrite:
    name: str
    status: str
    reason: str | None
    digest: str | None  # the agent spec it applies to; a new spec in git lifts it


@dataclass(frozen=True, slots=True)
class RunStatusWrite:
    name: str
    status: str
    outputs: Any = None


@dataclass
class WriteBatch:
    """Everything one tick or apply decided; written by `write_batch` in one transaction."""

    tasks: list[TaskWrite] = field(default_factory=list)
    run_starts: list[RunStart] = field(default_factory=list)
    run_updates: list[RunUpdate] = field(default_factory=list)
    ledger: list[LedgerEntry] = field(default_factory=list)
    memory: list[MemoryWrite] = field(default_factory=list)
    drops: list[DropWrite] = field(default_factory=list)
    agents: list[AgentStatusWrite] = field(default_factory=list)
    workflow_runs: list[RunStatusWrite] = field(default_factory=list)
    events: list[NewEvent] = field(default_factory=list)
    _task_index: dict[str, int] = field(default_factory=dict, repr=False)

    def add_task(self, write: TaskWrite) -> None:
        """Queue a transition; a second one for the same task in this batch chains onto it
        (one UPDATE per task: the batched statement cannot apply two to one row)."""
        index = self._task_index.get(write.name)
        if index is None:
            self._task_index[write.name] = len(self.tasks)
            self.tasks.append(write)
        else:
            self.tasks[index] = self.tasks[index].then(write)

    def empty(self) -> bool:
        return not any(
            (
                self.tasks,
                self.run_starts,
                self.run_updates,
                self.ledger,
                self.memory,
                self.drops,
                self.agents,
                self.workflow_runs,
                self.events,
            )
        )


def _cols(rows: Sequence[Any], *names: str) -> list[list[Any]]:
    return [[getattr(r, n) for r in rows] for n in names]


def write_batch(db: Database, batch: WriteBatch, now: datetime) -> list[str]:
    """Write the batch, one statement per non-empty list (per table family, in this order);
    return the task transitions actually applied (others were replays)."""
    with db.transaction():
        _write_run_starts(db, batch.run_starts)
        applied = _write_tasks(db, batch.tasks, now)
        _write_run_updates(db, batch.run_updates)
        _write_ledger(db, batch.ledger)
        _write_memory(db, batch.memory, now)
        _write_drops(db, batch.drops, now)
        _write_agents(db, batch.agents, now)
        _write_workflow_runs(db, batch.workflow_runs, now)
        _write_events(db, [*_transition_events(batch.tasks, applied), *batch.events], now)
    return applied


def _write_run_starts(db: Database, starts: Sequence[RunStart]) -> None:
    if not starts:
        return
    db.execute(
        "INSERT INTO runs (id, task, attempt, agent, executor, state, owner_pid, workspace,"
        " started_at) SELECT unnest(?), unnest(?), unnest(?), unnest(?), unnest(?),"
        " 'LAUNCHING', unnest(?), unnest(?), unnest(?)",
        _cols(
            starts,
            "id",
            "task",
            "attempt",
            "agent",
            "executor",
            "owner_pid",
            "workspace",
            "started_at",
        ),
    )


def _write_tasks(db: Database, writes: Sequence[TaskWrite], now: datetime) -> list[str]:
    """One UPDATE for all transitions; a row only moves if it is still in `source` and this
    key was not the last one applied, which makes replays (after a crash) harmless."""
    if not writes:
        return []
    rows = db.fetchall(
        "UPDATE tasks SET state = v.target, reason = v.reason, transition_key = v.key,"
        " agent = coalesce(v.agent, tasks.agent), attempts = coalesce(v.attempts, tasks.attempts),"
        " abandoned = coalesce(v.abandoned, tasks.abandoned), next_attempt_at = v.next_at,"
        " output = coalesce(v.output::JSON, tasks.output),"
        " outputs = coalesce(v.outputs::JSON, tasks.outputs),"
        " feedback = coalesce(v.feedback, tasks.feedback),"
        " rework = coalesce(v.rework, tasks.rework), updated_at = ?"
        " FROM (SELECT unnest(?) AS name, unnest(?) AS source, unnest(?) AS target,"
        " unnest(?) AS key, unnest(?) AS reason, unnest(?) AS agent, unnest(?) AS attempts,"
        " unnest(?) AS abandoned, unnest(?::TIMESTAMP[]) AS next_at, unnest(?) AS output,"
        " unnest(?) AS outputs, unnest(?::VARCHAR[]) AS feedback,"
        " unnest(?::INTEGER[]) AS rework) v"
        " WHERE tasks.name = v.name AND tasks.state = v.source"
        " AND coalesce(tasks.transition_key, '') <> v.key RETURNING tasks.name",
        [
            now,
            *_cols(
                writes,
                "name",
                "source",
                "target",
                "key",
                "reason",
                "agent",
                "attempts",
                "abandoned",
                "next_attempt_at",
            ),
            [_json(w.output) for w in writes],
            [_json(w.outputs) for w in writes],
            [w.feedback for w in writes],
            [w.rework for w in writes],
        ],
    )
    return [r[0] for r in rows]


def _write_run_updates(db: Database, updates: Sequence[RunUpdate]) -> None:
    if not updates:
        return
    db.execute(
        "UPDATE runs SET state = v.state, pid = coalesce(v.pid, runs.pid),"
        " proc_start = coalesce(v.proc_start, runs.proc_start),"
        " ended_at = coalesce(v.ended_at, runs.ended_at),"
        " exit_code = coalesce(v.exit_code, runs.exit_code),"
        " status = coalesce(v.status, runs.status),"
        " error_class = coalesce(v.error_class, runs.error_class),"
        " error = coalesce(v.error, runs.error),"
        " cost_usd = coalesce(v.cost_usd, runs.cost_usd), tokens = coalesce(v.tokens, runs.tokens)"
        " FROM (SELECT unnest(?) AS id, unnest(?) AS state, unnest(?) AS pid,"
        " unnest(?::BIGINT[]) AS proc_start, unnest(?::TIMESTAMP[]) AS ended_at,"
        " unnest(?::INTEGER[]) AS exit_code, unnest(?::VARCHAR[]) AS status,"
        " unnest(?::VARCHAR[]) AS error_class, unnest(?::VARCHAR[]) AS error,"
        " unnest(?::DECIMAL(18,6)[]) AS cost_usd, unnest(?::BIGINT[]) AS tokens) v"
        " WHERE runs.id = v.id",
        _cols(
            updates,
            "id",
            "state",
            "pid",
            "proc_start",
            "ended_at",
            "exit_code",
            "status",
            "error_class",
            "error",
            "cost_usd",
            "tokens",
        ),
    )


def _write_ledger(db: Database, entries: Sequence[LedgerEntry]) -> None:
    if entries:
        db.execute(
            "INSERT INTO ledger SELECT unnest(?), unnest(?), unnest(?), unnest(?), unnest(?),"
            " unnest(?)",
            _cols(entries, "time", "day", "run_id", "agent", "task", "cost_usd"),
        )


def _write_memory(db: Database, writes: Sequence[MemoryWrite], now: datetime) -> None:
    deletes = [w for w in writes if w.value is None]
    sets = [w for w in writes if w.value is not None]
    if sets:
        db.execute(
            "INSERT OR REPLACE INTO memory SELECT unnest(?), unnest(?), unnest(?)::JSON, ?",
            [*_cols(sets, "scope", "key"), [_json(w.value) for w in sets], now],
        )
    if deletes:
        db.execute(
            "DELETE FROM memory WHERE (scope, key) IN (SELECT (unnest(?), unnest(?)))",
            _cols(deletes, "scope", "key"),
        )


def _write_drops(db: Database, drops: Sequence[DropWrite], now: datetime) -> None:
    if drops:
        db.execute(
            "INSERT INTO drops SELECT unnest(?), unnest(?), unnest(?), unnest(?), unnest(?),"
            " unnest(?), ?",
            [*_cols(drops, "run_id", "task", "path", "sha256", "size", "media_type"), now],
        )


def _write_agents(db: Database, agents: Sequence[AgentStatusWrite], now: datetime) -> None:
    if agents:
        db.execute(
            "INSERT OR REPLACE INTO agents (name, status, reason, updated_at, digest)"
            " SELECT unnest(?), unnest(?), unnest(?), ?, unnest(?)",
            [*_cols(agents, "name", "status", "reason"), now, [a.digest for a in agents]],
        )


def _write_workflow_runs(db: Database, runs: Sequence[RunStatusWrite], now: datetime) -> None:
    if runs:
        db.execute(
            "UPDATE workflow_runs SET status = v.status,"
            " outputs = coalesce(v.outputs::JSON, workflow_runs.outputs), updated_at = ?"
            " FROM (SELECT unnest(?) AS name, unnest(?) AS status,"
            " unnest(?::VARCHAR[]) AS outputs) v WHERE workflow_runs.name = v.name",
            [now, *_cols(runs, "name", "status"), [_json(r.outputs) for r in runs]],
        )


def _transition_events(writes: Sequence[TaskWrite], applied: Sequence[str]) -> list[NewEvent]:
    """One `task.transition` event per hop of each write that applied (replays write none)."""
    moved = set(applied)
    return [
        NewEvent(
            t.actor,
            "task.transition",
            f"Task/{t.name}",
            {"from": hop.source, "to": hop.target, "reason": hop.reason, "key": hop.key},
            t.commit,
        )
        for t in writes
        if t.name in moved
        for hop in t.hops()
    ]


def _write_events(db: Database, events: Sequence[NewEvent], now: datetime) -> None:
    if events:
        db.execute(
            "INSERT INTO events (time, actor, kind, subject, data, commit)"
            " SELECT ?, unnest(?), unnest(?), unnest(?), unnest(?)::JSON, unnest(?)",
            [
                now,
                *_cols(events, "actor", "kind", "subject"),
                [_json(e.data) for e in events],
                [e.commit for e in events],
            ],
        )
