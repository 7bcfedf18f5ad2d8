"""The two interfaces over the state file: StateReader for everyone, StateWriter for the applier.

Each is composed of one store class per table family (see the package map in `state/__init__`);
callers import only these two and `State`, which opens the file and hands them out.
"""

from __future__ import annotations

from pathlib import Path

from state.agents import AgentReader, AgentWriter
from state.approvals import ApprovalReader, ApprovalWriter
from state.db import Database, open_database
from state.events import EventReader, EventWriter
from state.resources import PendingWrite, ResourceReader, ResourceWrite, ResourceWriter
from state.runs import RunReader
from state.tasks import TaskReader, TaskWriter

__all__ = ["PendingWrite", "ResourceWrite", "State", "StateReader", "StateWriter"]


class StateReader(ResourceReader, TaskReader, RunReader, ApprovalReader, EventReader, AgentReader):
    """Everything the CLI, dashboard and planner may ask of the observed state."""

    @property
    def path(self) -> str:
        return self.db.path


class StateWriter(
    StateReader, ResourceWriter, TaskWriter, ApprovalWriter, EventWriter, AgentWriter
):
    """Writes, grouped by the caller into transactions; only apply and runtime hold one."""


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
