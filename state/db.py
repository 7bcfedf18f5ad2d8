"""Open the DuckDB state file safely: locks, corruption and schema versions become typed errors."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb

from state.errors import StateCorrupt, StateLocked, StateTooNew
from state.schema import MIGRATIONS, SCHEMA_VERSION

_PID = re.compile(r"\(PID (\d+)\)")


class Database:
    """One DuckDB connection plus the statement counter the benchmarks report."""

    def __init__(self, path: str, con: duckdb.DuckDBPyConnection, writable: bool) -> None:
        self.path = path
        self.con = con
        self.writable = writable
        self.statements = 0
        self._depth = 0

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> duckdb.DuckDBPyConnection:
        self.statements += 1
        return self.con.execute(sql, params) if params is not None else self.con.execute(sql)

    def fetchall(self, sql: str, params: Sequence[Any] | None = None) -> list[tuple[Any, ...]]:
        return self.execute(sql, params).fetchall()

    def fetchone(self, sql: str, params: Sequence[Any] | None = None) -> tuple[Any, ...] | None:
        return self.execute(sql, params).fetchone()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """All-or-nothing block; nested use joins the outer transaction."""
        if self._depth:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        self.execute("BEGIN TRANSACTION")
        self._depth = 1
        try:
            yield
        except BaseException:
            self._depth = 0
            self.execute("ROLLBACK")
            raise
        self._depth = 0
        self.execute("COMMIT")

    def close(self) -> None:
        self.con.close()


def open_database(path: Path | None, *, write: bool) -> Database:
    """Open (or, for writers, create) the state file; `None` or a missing file reads as empty.

    A reader never modifies the file, so bad input elsewhere leaves it byte-identical.
    """
    if path is None or (not write and not path.exists()):
        db = Database(":memory:", duckdb.connect(":memory:"), writable=True)
        _migrate(db, 0)
        db.writable = False
        return db
    if write:
        path.parent.mkdir(parents=True, exist_ok=True)
    db = Database(str(path), _connect(path, read_only=not write), writable=write)
    try:
        version = _version(db)
        if version > SCHEMA_VERSION:
            raise StateTooNew(str(path), version, SCHEMA_VERSION)
        if version < SCHEMA_VERSION:
            if not write:
                db.close()  # migrating needs the write lock; read the carried-forward copy
                return _migrated_copy(path)
            _migrate(db, version)
    except BaseException:
        db.close()
        raise
    return db


def _connect(path: Path, *, read_only: bool) -> duckdb.DuckDBPyConnection:
    try:
        return duckdb.connect(str(path), read_only=read_only)
    except duckdb.Error as exc:
        text = str(exc)
        if "lock" in text.lower():
            match = _PID.search(text)
            raise StateLocked(str(path), int(match.group(1)) if match else None) from None
        raise StateCorrupt(str(path), text.split("Error: ", 1)[-1]) from None


def _version(db: Database) -> int:
    try:
        tables = {r[0] for r in db.fetchall("SELECT table_name FROM information_schema.tables")}
        if not tables:
            return 0
        row = db.fetchone("SELECT value FROM meta WHERE key = 'schema_version'")
    except duckdb.Error as exc:
        raise StateCorrupt(db.path, str(exc)) from None
    if row is None:
        raise StateCorrupt(db.path, "no schema version recorded")
    return int(row[0])


def _migrate(db: Database, current: int) -> None:
    with db.transaction():
        for version in range(current, SCHEMA_VERSION):
            for sql in MIGRATIONS[version]:
                db.execute(sql)
        db.execute(
            "INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", [str(SCHEMA_VERSION)]
        )


def _migrated_copy(path: Path) -> Database:
    """A read-only view of an older state file, migrated in memory."""
    db = Database(":memory:", duckdb.connect(":memory:"), writable=True)
    db.execute(f"ATTACH '{path}' AS old (READ_ONLY)")
    db.execute("COPY FROM DATABASE old TO memory")
    db.execute("DETACH old")
    _migrate(db, _version(db))
    db.writable = False
    return db
