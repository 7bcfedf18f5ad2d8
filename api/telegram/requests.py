"""Approval requests the bot posted, and the (pure) judgement of a decision made on one.

A request is one message for one target at one digest; its short id rides in the buttons'
callback data and in `/approve ID`. Which requests were posted is remembered in memory and
in `telegram.posted` / `telegram.closed` events, so a restart never posts one twice.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from api.telegram.awaiting import Awaiting
from state.records import ApprovalRow, Event

POSTED, CLOSED, REFUSED = "telegram.posted", "telegram.closed", "telegram.refused"


@dataclass(frozen=True)
class Person:
    """Who sent an update, and from which chat."""

    user_id: int
    username: str | None
    chat_id: int


@dataclass
class PostedRequest:
    id: str
    target: str
    digest: str
    risk: str
    chat_id: int
    posted_at: datetime
    text: str = ""  # the body as posted; outcomes are appended below it
    message_id: int | None = None  # None while the message is on its way
    closed: bool = False
    shown_votes: tuple[str, ...] = field(default=())
    outcomes: list[str] = field(default_factory=list)  # appended below the body, oldest first
    action: str = ""  # what awaits: create | update | … | dispatch | review ("" if restored)

    @property
    def key(self) -> tuple[str, str]:
        return (self.target, self.digest)


class Requests:
    """Posted requests by id, and the latest one per (target, digest)."""

    def __init__(self) -> None:
        self._by_id: dict[str, PostedRequest] = {}
        self._latest: dict[tuple[str, str], PostedRequest] = {}

    def new_id(self) -> str:
        while True:
            rid = secrets.token_hex(4)
            if rid not in self._by_id:
                return rid

    def add(self, req: PostedRequest) -> None:
        self._by_id[req.id] = req
        self._latest[req.key] = req

    def forget(self, req: PostedRequest) -> None:
        """A request that could not be sent: the next sync offers it again."""
        self._by_id.pop(req.id, None)
        if self._latest.get(req.key) is req:
            del self._latest[req.key]

    def get(self, rid: str) -> PostedRequest | None:
        return self._by_id.get(rid)

    def by_message(self, chat_id: int, message_id: int) -> PostedRequest | None:
        """The request posted as this message (a reply to it asks for changes)."""
        return next(
            (
                r
                for r in self._by_id.values()
                if r.chat_id == chat_id and r.message_id == message_id
            ),
            None,
        )

    def latest(self, key: tuple[str, str]) -> PostedRequest | None:
        return self._latest.get(key)

    def open(self) -> list[PostedRequest]:
        return [r for r in self._by_id.values() if not r.closed and r.message_id is not None]

    def restore(self, markers: Iterable[Event], chat_id: int) -> None:
        """Rebuild memory from the marker events (oldest first) of this chat."""
        for e in markers:
            if e.data.get("chat_id") != chat_id:
                continue
            if e.kind == POSTED:
                req = PostedRequest(
                    e.data["request"],
                    e.subject,
                    e.data["digest"],
                    e.data.get("risk", "HIGH"),
                    chat_id,
                    e.time,
                    e.data.get("text", ""),
                    e.data["message_id"],
                )
                self.add(req)
            elif e.kind == CLOSED and (found := self.get(e.data["request"])) is not None:
                found.closed = True


def needs_new_request(req: PostedRequest | None, now: datetime, ttl: timedelta) -> bool:
    """Post when never posted, or when the last request expired while still waiting."""
    return req is None or (req.message_id is not None and now - req.posted_at > ttl)


@dataclass(frozen=True)
class Refusal:
    reason: str
    ends_request: bool  # stale, expired or no longer waiting: the message is closed


def refusal(
    req: PostedRequest,
    current: Mapping[tuple[str, str], Awaiting],
    approver: str,
    now: datetime,
    ttl: timedelta,
) -> Refusal | None:
    """Why this approver may not decide on this request now, or None."""
    same = current.get(req.key)
    if same is None:
        newer = next((a for a in current.values() if a.target == req.target), None)
        if newer is not None:
            return Refusal(
                f"stale: {req.target} changed since this request was posted (it showed"
                f" {req.digest[:19]}…, it is now {newer.digest[:19]}…); decide on the new request",
                True,
            )
        return Refusal(
            f"{req.target} is no longer waiting for approval (applied, decided or withdrawn)", True
        )
    if now - req.posted_at > ttl:
        return Refusal(
            f"expired: posted {req.posted_at.isoformat(timespec='seconds')}Z, older than"
            f" approval_ttl ({_duration(ttl)}); a fresh request follows",
            True,
        )
    if approver in same.approved_by:
        return Refusal(f"already decided: {approver} approved this exact content", False)
    if approver in same.denied_by:
        return Refusal(f"already decided: {approver} denied this exact content", False)
    return None


def approval_row(
    req: PostedRequest,
    approver: str,
    decision: str,
    comment: str,
    who: Person,
    now: datetime,
) -> ApprovalRow:
    """A decision as the serve loop records it: accepted, with who pressed what where."""
    evidence = {
        "user_id": who.user_id,
        "username": who.username,
        "chat_id": req.chat_id,
        "message_id": req.message_id,
        "decided_in_chat": who.chat_id,
        "digest_shown": req.digest,
        "request": req.id,
        "comment": comment,
        "actor": f"telegram:{approver}",
    }
    return ApprovalRow(
        f"telegram:{req.chat_id}:{req.message_id}:{who.user_id}",
        req.target,
        req.digest,
        approver,
        decision,
        "telegram",
        "accepted",
        None,
        evidence,
        now,
    )


def _duration(ttl: timedelta) -> str:
    seconds = int(ttl.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
