"""Requests only the serve loop may write, queued by the Telegram bot (api/telegram) and by
other `mc` commands through the holder socket (`mc retry`); carried out here for serve/loop.py.

DuckDB has one writer; the loop owns it. A request is queued, the loop is woken, and the
caller waits on the returned future for the outcome (a one-line message, or an MCError).
"""

from __future__ import annotations

import queue
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime
from typing import assert_never

from reconciler.commands.holder import RetryRequest
from reconciler.commands.reads import requeued
from reconciler.commands.workflow_runs import retry_target
from specs.errors import MCError
from state.records import ApprovalRow, NewEvent
from state.store import State

ACTOR = "serve"


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


Request = RecordApproval | SetMode | Quarantine | RecordEvents | RetryRequest


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


def carry_out(request: Request, state: State, mission: str | None, now: datetime) -> str:
    """Write what one request asks for; the one-line outcome for the requester."""
    match request:
        case RecordApproval(row=row):
            return _record_approval(state, row, now)
        case SetMode(mode=mode, actor=actor, reason=reason):
            return _set_mode(state, mission, mode, actor, reason, now)
        case Quarantine(agent=agent, actor=actor, reason=reason):
            res = state.reader.resource("Agent", agent)
            if res is None:
                raise MCError(f"unknown agent {agent!r}")
            state.writer.record_quarantine(agent, reason, res.digest, actor, now)
            return f"agent {agent} quarantined"
        case RecordEvents(events=events):
            state.writer.append_events(list(events), now)
            return f"{len(events)} event(s) recorded"
        case RetryRequest(target=target, actor=actor):
            return requeued(retry_target(state, target, actor, now))
        case _:
            assert_never(request)


def _record_approval(state: State, row: ApprovalRow, now: datetime) -> str:
    data = {
        "approver": row.approver,
        "decision": row.decision,
        "digest": row.digest,
        "reason": row.reason,
        "channel": row.channel,
        "evidence": row.evidence,
    }
    actor = row.evidence.get("actor", ACTOR)
    with state.db.transaction():
        state.writer.record_approvals([row], now)
        state.writer.append_events(
            [NewEvent(actor, f"approval.{row.status}", row.target, data)], now
        )
    return f"{row.decision} of {row.target} recorded"


def _set_mode(
    state: State, mission: str | None, mode: str | None, actor: str, reason: str, now: datetime
) -> str:
    """Override the mission mode, remembering the mode git declares to tell them apart."""
    git_mode = "normal"
    if mission is not None:
        spec = state.reader.resource("Mission", mission)
        git_mode = spec.spec.get("mode", "normal") if spec else "normal"
    writer = state.writer
    with state.db.transaction():
        writer.set_override("mode", mode, actor, reason, now)
        writer.set_override("mode.git", git_mode if mode else None, actor, reason, now)
        kind = "override.set" if mode else "override.lifted"
        writer.append_events(
            [NewEvent(actor, kind, "Mission", {"mode": mode, "reason": reason})], now
        )
    return f"mission mode overridden to {mode}" if mode else "override lifted"
