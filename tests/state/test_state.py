"""The state store on real DuckDB files: schema versions, serial, events, pending, readers,
the composed read/write interfaces and the statement count of a write batch."""

from __future__ import annotations

import inspect
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
from helpers.starter import sha256_of

from state.errors import StateCorrupt, StateTooNew
from state.records import NewEvent
from state.schema import SCHEMA_VERSION
from state.store import PendingWrite, ResourceWrite, State, StateReader, StateWriter
from state.table_store import TableStore
from state.write_batch import (
    AgentStatusWrite,
    DropWrite,
    LedgerEntry,
    MemoryWrite,
    RunStart,
    RunStatusWrite,
    RunUpdate,
    TaskWrite,
    WriteBatch,
    write_batch,
)

T0 = datetime(2026, 11, 23, 10, 0, 0)


@pytest.fixture
def state_path(tmp_path: Path) -> Path:
    return tmp_path / "nested" / "state.duckdb"


def meta(path: Path) -> dict[str, str]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return dict(con.execute("SELECT key, value FROM meta").fetchall())
    finally:
        con.close()


def table_names(path: Path) -> set[str]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        rows = con.execute("SELECT table_name FROM information_schema.tables").fetchall()
        return {r[0] for r in rows}
    finally:
        con.close()


def test_a_new_state_file_is_created_at_the_current_schema_version(state_path: Path) -> None:
    with State.open(state_path, write=True) as state:
        assert state.reader.serial() == 0
        assert state.reader.resources() == {}
    assert meta(state_path) == {"schema_version": str(SCHEMA_VERSION), "serial": "0"}
    tables = table_names(state_path)
    assert tables >= {"meta", "resources", "events", "pending", "tasks", "runs", "ledger"}


def test_an_empty_duckdb_file_is_migrated_by_a_writer(state_path: Path) -> None:
    state_path.parent.mkdir()
    duckdb.connect(str(state_path)).close()  # a file at schema version 0
    with State.open(state_path, write=False) as state:  # a reader migrates a copy in memory
        assert state.reader.serial() == 0
    assert table_names(state_path) == set()  # ... and leaves the file alone
    with State.open(state_path, write=True):
        pass
    assert meta(state_path)["schema_version"] == str(SCHEMA_VERSION)


def test_reopening_keeps_data_and_does_not_migrate_again(state_path: Path) -> None:
    with State.open(state_path, write=True) as state, state.db.transaction():
        state.writer.bump_serial(2)
    with State.open(state_path, write=True) as state:
        assert state.reader.serial() == 2
    assert meta(state_path)["schema_version"] == str(SCHEMA_VERSION)


def test_serial_bumps_persist(state_path: Path) -> None:
    with State.open(state_path, write=True) as state:
        assert state.writer.bump_serial() == 1
        assert state.writer.bump_serial(3) == 4
    with State.open(state_path, write=False) as state:
        assert state.reader.serial() == 4


def test_a_failed_transaction_writes_nothing(state_path: Path) -> None:
    with State.open(state_path, write=True) as state:
        with pytest.raises(RuntimeError), state.db.transaction():
            state.writer.bump_serial(5)
            state.writer.append_events([NewEvent("t", "x", "s", {})], T0)
            raise RuntimeError("boom")
        assert state.reader.serial() == 0
        assert state.reader.events() == []


def test_resource_upserts_count_generations(state_path: Path) -> None:
    write = ResourceWrite("Task", "a", {"team": "x"}, {"title": "A"}, "sha256:1", "tasks/a.yaml")
    with State.open(state_path, write=True) as state:
        state.writer.upsert_resources([write], "c1", T0)
        state.writer.upsert_resources([write], "c2", T0)
        res = state.reader.resource("Task", "a")
        assert res is not None
        assert (res.generation, res.commit, res.spec, res.labels) == (
            2,
            "c2",
            {"title": "A"},
            {"team": "x"},
        )
        assert state.reader.resource_digests() == {"Task/a": "sha256:1"}
        state.writer.delete_resources([("Task", "a")])
        assert state.reader.resources() == {}


def test_events_are_appended_in_order_and_never_rewritten(state_path: Path) -> None:
    with State.open(state_path, write=True) as state:
        w = state.writer
        w.append_events([NewEvent("a", "k1", "s1", {"n": 1}), NewEvent("a", "k2", "s2", {})], T0)
        first = w.events()
        w.append_events([NewEvent("b", "k3", "s3", {"n": 3}, "c1")], T0 + timedelta(seconds=1))
        every = w.events()
        assert [e.seq for e in every] == [1, 2, 3]
        assert [(e.actor, e.kind, e.subject, e.data, e.commit) for e in every] == [
            ("a", "k1", "s1", {"n": 1}, None),
            ("a", "k2", "s2", {}, None),
            ("b", "k3", "s3", {"n": 3}, "c1"),
        ]
        assert every[:2] == first  # earlier events are untouched by later appends
        assert [e.seq for e in w.events(limit=2)] == [2, 3]  # the newest, oldest first
        assert [e.seq for e in w.events(after_seq=1)] == [2, 3]


def test_events_since_filters_by_time(state_path: Path) -> None:
    with State.open(state_path, write=True) as state:
        w = state.writer
        w.append_events([NewEvent("a", "old", "s", {})], T0 - timedelta(hours=3))
        w.append_events([NewEvent("a", "new", "s", {})], T0)
        assert [e.kind for e in w.events(since=T0 - timedelta(hours=1))] == ["new"]
        assert [e.kind for e in w.events(since=T0 - timedelta(hours=4))] == ["old", "new"]
        assert w.events(since=T0 + timedelta(seconds=1)) == []


def test_replacing_pending_keeps_since_for_unchanged_entries(state_path: Path) -> None:
    a = PendingWrite("Agent/a", "update", "sha256:a1", "HIGH", "agent command")
    b = PendingWrite("Task/b", "delete", "sha256:b1", "HIGH", "running")
    c = PendingWrite("Task/c", "create", "sha256:c1", "RED", "rule")
    later = T0 + timedelta(hours=1)
    with State.open(state_path, write=True) as state:
        w = state.writer
        w.replace_pending([a, b, c], "c1", T0)
        b_changed = PendingWrite("Task/b", "delete", "sha256:b2", "HIGH", "running")
        w.replace_pending([a, b_changed], "c2", later)
        rows = {p.key: p for p in w.pending()}
    assert set(rows) == {"Agent/a", "Task/b"}  # c is no longer waiting
    assert rows["Agent/a"].since == T0  # unchanged: still waiting since the first plan
    assert rows["Task/b"].since == later  # a new digest is a new request
    assert rows["Task/b"].digest == "sha256:b2"
    assert {p.commit for p in rows.values()} == {"c2"}


def test_tasks_are_created_once_and_canceled(state_path: Path) -> None:
    with State.open(state_path, write=True) as state:
        w = state.writer
        w.create_tasks(["a", "b"], T0)
        w.create_tasks(["a"], T0)  # an existing task keeps its row
        w.cancel_tasks(["b"], "deleted from git", T0)
        assert w.task_states() == {"a": "INBOX", "b": "CANCELED"}
        assert w.task_counts() == {"INBOX": 1, "CANCELED": 1}


def test_a_reader_on_a_missing_file_reads_empty_and_creates_nothing(state_path: Path) -> None:
    with State.open(state_path, write=False) as state:
        assert state.reader.serial() == 0
        assert state.reader.resources() == {}
        assert state.reader.events() == []
        assert state.reader.pending() == []
        with pytest.raises(RuntimeError):
            _ = state.writer
    assert not state_path.exists()
    assert not state_path.parent.exists()


def test_a_reader_leaves_the_file_byte_identical(state_path: Path) -> None:
    with State.open(state_path, write=True) as state:
        state.writer.append_events([NewEvent("a", "k", "s", {})], T0)
    before = sha256_of(state_path)
    with State.open(state_path, write=False) as state:
        assert len(state.reader.events()) == 1
    assert sha256_of(state_path) == before


def test_a_newer_schema_is_refused(state_path: Path) -> None:
    with State.open(state_path, write=True):
        pass
    con = duckdb.connect(str(state_path))
    con.execute("UPDATE meta SET value = '999' WHERE key = 'schema_version'")
    con.close()
    before = sha256_of(state_path)
    for write in (False, True):
        with pytest.raises(StateTooNew, match="version 999 is newer"):
            State.open(state_path, write=write)
    assert sha256_of(state_path) == before


def test_random_bytes_are_not_a_state_file(state_path: Path) -> None:
    state_path.parent.mkdir()
    state_path.write_bytes(bytes(range(256)) * 64)
    before = sha256_of(state_path)
    for write in (False, True):
        with pytest.raises(StateCorrupt, match="not a readable Mission Control state file"):
            State.open(state_path, write=write)
    assert sha256_of(state_path) == before


READS = {
    "path", "serial", "applied_commit", "resources", "resource_digests", "resources_by_key",
    "resource", "pending", "task_states", "task_states_of", "tasks_in", "task_counts", "tasks",
    "workflow_runs", "runs", "run", "run_counts", "recent_outcomes", "drops", "drop_count",
    "spend_by_agent",
    "spend_since", "approvals", "overrides", "events", "agent_overrides", "agent_status_rows",
    "memory", "proposed_policy", "target_digests_since", "latest_event",
}  # fmt: skip
WRITES = {
    "bump_serial", "set_meta", "upsert_resources", "delete_resources", "replace_pending",
    "create_tasks", "start_workflow_run", "set_workflow_run", "cancel_tasks", "record_approvals",
    "forget_approvals", "set_override", "append_events", "record_quarantine",
    "record_target_digests",
}  # fmt: skip


def public_names(cls: type) -> set[str]:
    return {n for n in dir(cls) if not n.startswith("_")}


def test_the_two_interfaces_are_composed_of_small_per_family_stores() -> None:
    assert public_names(StateReader) == READS
    assert public_names(StateWriter) == READS | WRITES
    families = [c for c in StateWriter.__mro__ if issubclass(c, TableStore)]
    for family in families:
        own = [
            n for n, v in vars(family).items() if inspect.isfunction(v) or isinstance(v, property)
        ]
        assert len(own) <= 15, family
    readers = [c for c in StateReader.__mro__ if c not in (StateReader, TableStore, object)]
    assert all(c.__name__.endswith("Reader") for c in readers)


def full_batch() -> WriteBatch:
    batch = WriteBatch()
    for n in ("a", "b"):
        batch.add_task(TaskWrite(n, "INBOX", "ASSIGNED", f"k-{n}", "mc", "dispatch", agent="x"))
        batch.run_starts.append(RunStart(f"r-{n}", n, 1, "x", "local", 1, f"w/{n}", T0))
        batch.run_updates.append(RunUpdate(f"r-{n}", "RUNNING", pid=2))
        batch.ledger.append(LedgerEntry(T0, date(2026, 11, 23), f"r-{n}", "x", n, Decimal("1")))
        batch.memory.append(MemoryWrite(f"task:{n}", "k", {"v": n}))
        batch.memory.append(MemoryWrite(f"task:{n}", "gone", None))
        batch.drops.append(DropWrite(f"r-{n}", n, f"out/{n}", "0" * 64, 1, "text/plain"))
        batch.agents.append(AgentStatusWrite(f"x{n}", "quarantined", "loops", "d"))
        batch.workflow_runs.append(RunStatusWrite(f"wr-{n}", "RUNNING"))
        batch.events.append(NewEvent("mc", "note", f"Task/{n}", {}))
    return batch


def test_a_write_batch_is_one_transaction_of_one_statement_per_table_family(
    state_path: Path,
) -> None:
    with State.open(state_path, write=True) as state:
        state.writer.create_tasks(["a", "b"], T0)
        before = state.db.statements
        applied = write_batch(state.db, full_batch(), T0)
        # BEGIN, runs insert, tasks, runs update, ledger, memory set + delete, drops, agents,
        # workflow runs, events, COMMIT: two rows each, never one statement per row.
        assert state.db.statements - before == 12
        assert sorted(applied) == ["a", "b"]
        assert state.reader.task_states() == {"a": "ASSIGNED", "b": "ASSIGNED"}
        assert [r.state for r in state.reader.runs()] == ["RUNNING", "RUNNING"]
        assert state.reader.memory("task:") == {
            "task:a": {"k": {"v": "a"}},
            "task:b": {"k": {"v": "b"}},
        }
        kinds = [e.kind for e in state.reader.events()]
        assert kinds == ["task.transition", "task.transition", "note", "note"]
        replay = WriteBatch(tasks=full_batch().tasks)
        before = state.db.statements
        assert write_batch(state.db, replay, T0) == []  # a replay moves nothing...
        assert state.db.statements - before == 3  # ...and writes no transition events


def test_an_empty_write_batch_writes_only_its_transaction(state_path: Path) -> None:
    with State.open(state_path, write=True) as state:
        before = state.db.statements
        assert write_batch(state.db, WriteBatch(), T0) == []
        assert state.db.statements - before == 2
