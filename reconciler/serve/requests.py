"""Bot requests only the serve loop may write; queued by api/telegram, run by serve/loop.py.

DuckDB has one writer; the loop owns it. A request is queued, the loop is woken, and the
caller waits on the returned future for the outcome (a one-line message, or an MCError).
"""

from __future__ import annotations

import queue
from concurrent.futures import Future
from dataclasses import dataclass

from state.records import ApprovalRow, NewEvent


@dataclass(frozen=True, slots=True)
class RecordApproval:
    """A decision made in Telegram, already checked against the declared approvers."""

    row: ApprovalRow


@dataclass(frozen=True, slots=True)
class SetMode:
    """Emergency override of the mission mode (None lifts it)."""

    mode: str | None
    actor: str
    reason: str


@dataclass(frozen=True, slots=True)
class Quarantine:
    agent: str
    actor: str
    reason: str


@dataclass(frozen=True, slots=True)
class RecordEvents:
    """Audit events from another thread: the bot's request markers and refusals."""

    events: tuple[NewEvent, ...]


Request = RecordApproval | SetMode | Quarantine | RecordEvents


class RequestQueue:
    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[tuple[Request, Future[str]]] = queue.SimpleQueue()

    def submit(self, request: Request) -> Future[str]:
        done: Future[str] = Future()
        self._queue.put((request, done))
        return done

    def waiting(self) -> bool:
        return not self._queue.empty()

    def drain(self) -> list[tuple[Request, Future[str]]]:
        items = []
        while True:
            try:
                items.append(self._queue.get_nowait())
            except queue.Empty:
                return items
