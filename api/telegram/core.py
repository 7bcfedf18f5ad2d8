"""What the bot does, minus the Telegram library: post approval requests, judge decisions,
answer commands and collect notifications, against the live state.

Reads go through the serve loop's reader cursors (off the event loop, `asyncio.to_thread`);
writes are requests the loop performs (`Host.submit`). The PTB adapters in bot.py and the sync
timer in service.py call into this; it talks back only through a `Messenger`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import Future
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from api.telegram.awaiting import (
    Awaiting,
    Description,
    Governance,
    describe,
    read_awaiting,
    read_governance,
)
from api.telegram.config import BotSettings
from api.telegram.notify import NoticeBuffer, notice_of
from api.telegram.render import pending_text, request_text, spend_text, status_text, votes_line
from api.telegram.requests import (
    CLOSED,
    POSTED,
    REFUSED,
    Person,
    PostedRequest,
    Refusal,
    Requests,
    approval_row,
    needs_new_request,
    refusal,
)
from reconciler.engine.mirror import effective_mode
from reconciler.repo.source import MissionRepo
from reconciler.serve.requests import Quarantine, RecordApproval, RecordEvents, Request, SetMode
from specs.errors import MCError
from state.dashboard import DashboardReader
from state.records import Event, NewEvent
from state.store import StateReader

log = logging.getLogger("mc.telegram")
Clock = Callable[[], datetime]
EVENT_PAGE = 500
MARKER_PAGES = 200  # at most 100k markers are read back on start


class Host(Protocol):
    """What the bot needs of the serve loop (reconciler.serve.loop.ReconcileLoop)."""

    def open_reader(self) -> AbstractContextManager[tuple[StateReader, DashboardReader]]: ...

    def submit(self, request: Request) -> Future[str]: ...


class Messenger(Protocol):
    """How the core's messages reach the chat (queued and retried by the implementation)."""

    def post_request(
        self, req: PostedRequest, on_sent: Callable[[int], None], on_failed: Callable[[], None]
    ) -> None: ...

    def edit_request(self, req: PostedRequest, buttons: bool) -> None: ...

    def notify(self, text: str) -> None: ...


@dataclass(frozen=True)
class Snapshot:
    gov: Governance | None
    awaiting: dict[tuple[str, str], Awaiting]
    events: list[Event]


@dataclass(frozen=True)
class Judgement:
    approver: str | None
    refused: Refusal | None
    item: Awaiting | None


class BotCore:
    def __init__(
        self,
        host: Host,
        repo: MissionRepo,
        clock: Clock,
        chat_id: int,
        settings: BotSettings,
    ) -> None:
        self.host, self.repo, self.clock, self.chat_id = host, repo, clock, chat_id
        self.settings = settings
        self.requests = Requests()
        self.notices = NoticeBuffer(settings.quiet_s, settings.max_hold_s, settings.per_minute)
        self.cursor = 0
        self.messenger: Messenger | None = None

    # --- start ---------------------------------------------------------------------------------

    def load(self) -> None:
        """Where notifications start (events from now on) and what was already posted."""
        with self.host.open_reader() as (_, dash):
            self.cursor = dash.last_event_seq()
            markers: list[Event] = []
            for kind in (POSTED, CLOSED):
                after = 0
                for _ in range(MARKER_PAGES):
                    page = dash.event_page(after=after, kind=kind, limit=EVENT_PAGE)
                    markers += page
                    if len(page) < EVENT_PAGE:
                        break
                    after = max(e.seq for e in page)
        self.requests.restore(sorted(markers, key=_seq), self.chat_id)

    # --- the periodic sync: requests and notifications ----------------------------------------

    async def sync_once(self) -> None:
        open_targets = sorted({r.target for r in self.requests.open()})
        snap = await asyncio.to_thread(self._snapshot, open_targets)
        if snap.gov is not None and snap.gov.approvers:
            for item in self._to_post(snap.awaiting, snap.gov.ttl):
                desc = await asyncio.to_thread(self._describe, item)
                self._post(item, desc)
            self._refresh_open(snap.awaiting)
        now = time.monotonic()
        self.notices.add([n for e in snap.events if (n := notice_of(e)) is not None], now)
        text = self.notices.due(now)
        if text is not None:
            self._messenger().notify(text)

    def _snapshot(self, open_targets: list[str]) -> Snapshot:
        now = self.clock()
        with self.host.open_reader() as (reader, dash):
            gov = read_governance(dash)
            awaiting: dict[tuple[str, str], Awaiting] = {}
            if gov is not None:
                awaiting = read_awaiting(reader, gov, now)
                seen = {target for target, _ in awaiting}
                for target in (t for t in open_targets if t not in seen):
                    awaiting.update(read_awaiting(reader, gov, now, only=target))
            # the oldest page after the cursor (the dashboard's pages come newest first)
            events = sorted(dash.event_page(after=self.cursor, limit=EVENT_PAGE), key=_seq)
        if events:
            self.cursor = events[-1].seq
        return Snapshot(gov, awaiting, events)

    def _describe(self, item: Awaiting) -> Description:
        with self.host.open_reader() as (reader, _):
            return describe(item, reader, self.repo)

    def _to_post(self, awaiting: dict[tuple[str, str], Awaiting], ttl: timedelta) -> list[Awaiting]:
        now, out = self.clock(), []
        for key, item in sorted(awaiting.items()):
            latest = self.requests.latest(key)
            if item.denied_by or not needs_new_request(latest, now, ttl):
                continue
            if latest is not None and not latest.closed:
                self._close(latest, "⌛ expired (older than approval_ttl); a fresh request follows")
            out.append(item)
        return out

    def _post(self, item: Awaiting, desc: Description) -> None:
        rid = self.requests.new_id()
        text = request_text(rid, item, desc)
        req = PostedRequest(
            rid, item.target, item.digest, item.risk, self.chat_id, self.clock(), text
        )
        req.shown_votes = item.approved_by
        self.requests.add(req)
        self._messenger().post_request(
            req, lambda message_id: self._posted(req, message_id), lambda: self.requests.forget(req)
        )

    def _posted(self, req: PostedRequest, message_id: int) -> None:
        req.message_id = message_id
        data = {
            "request": req.id,
            "digest": req.digest,
            "risk": req.risk,
            "chat_id": req.chat_id,
            "message_id": message_id,
            "text": req.text,
        }
        self._record(NewEvent("telegram", POSTED, req.target, data))

    def _refresh_open(self, awaiting: dict[tuple[str, str], Awaiting]) -> None:
        """Close requests nothing waits on any more; show votes given elsewhere (git)."""
        for req in self.requests.open():
            item = awaiting.get(req.key)
            if item is None:
                newer = any(a.target == req.target for a in awaiting.values())
                self._close(
                    req,
                    f"↻ superseded: {req.target} changed; a new request follows"
                    if newer
                    else "✔ no longer waiting for approval (applied, decided or withdrawn)",
                )
            elif item.denied_by:
                who = ", ".join(item.denied_by)
                self._close(req, f"🚫 denied by {who} — final until the content changes")
            elif item.approved_by != req.shown_votes:
                req.shown_votes = item.approved_by
                req.outcomes.append(f"🗳 {votes_line(item)}")
                self._messenger().edit_request(req, buttons=True)

    def _close(self, req: PostedRequest, outcome: str) -> None:
        req.closed = True
        req.outcomes.append(outcome)
        if req.message_id is not None:
            self._messenger().edit_request(req, buttons=False)
            data = {"request": req.id, "chat_id": req.chat_id, "outcome": outcome}
            self._record(NewEvent("telegram", CLOSED, req.target, data))

    # --- decisions ---------------------------------------------------------------------------

    async def decide(self, who: Person, rid: str, decision: str, comment: str) -> str:
        """An approve/deny from a button or a command: judged on fresh state, then recorded."""
        req = self.requests.get(rid)
        verdict = await asyncio.to_thread(self._judge, who, req)
        if verdict.refused is not None:
            subject = req.target if req is not None else "Mission"
            self._refused(who, f"{decision} {rid}", verdict.refused.reason, subject)
            if verdict.refused.ends_request and req is not None and not req.closed:
                self._close(req, f"⛔ {decision} by {verdict.approver}: {verdict.refused.reason}")
            return f"Refused: {verdict.refused.reason}"
        assert req is not None and verdict.approver is not None and verdict.item is not None
        now = self.clock()
        row = approval_row(req, verdict.approver, decision, comment, who, now)
        try:
            await self._submit(RecordApproval(row))
        except TimeoutError:
            return QUEUED
        except MCError as exc:
            return f"Not recorded: {exc}"
        outcome, final = _outcome(verdict.item, verdict.approver, decision)
        if final:
            self._close(req, outcome)
        else:
            req.shown_votes = tuple(sorted({*verdict.item.approved_by, verdict.approver}))
            req.outcomes.append(outcome)
            self._messenger().edit_request(req, buttons=True)
        return outcome

    def _judge(self, who: Person, req: PostedRequest | None) -> Judgement:
        now = self.clock()
        with self.host.open_reader() as (reader, dash):
            gov = read_governance(dash)
            approver = gov.approver_for(who.user_id) if gov is not None else None
            if gov is None or approver is None:
                return Judgement(None, Refusal(NOT_APPROVER, False), None)
            if req is None:
                return Judgement(approver, Refusal(UNKNOWN_REQUEST, False), None)
            if req.message_id is None:
                return Judgement(approver, Refusal(STILL_POSTING, False), None)
            current = read_awaiting(reader, gov, now, only=req.target)
        return Judgement(
            approver, refusal(req, current, approver, now, gov.ttl), current.get(req.key)
        )

    # --- commands ----------------------------------------------------------------------------

    async def approver_for(self, user_id: int) -> str | None:
        def find() -> str | None:
            with self.host.open_reader() as (_, dash):
                gov = read_governance(dash)
            return gov.approver_for(user_id) if gov is not None else None

        return await asyncio.to_thread(find)

    async def status(self) -> str:
        return await asyncio.to_thread(self._status)

    def _status(self) -> str:
        now = self.clock()
        with self.host.open_reader() as (reader, dash):
            gov = read_governance(dash)
            git_mode = gov.spec.mode if gov is not None else "normal"
            overrides = reader.overrides()
            mode = effective_mode(overrides, git_mode)
            waiting = len(read_awaiting(reader, gov, now)) if gov is not None else 0
            return status_text(
                gov.mission if gov is not None else None,
                mode or git_mode,
                overrides.get("mode") if mode is not None else None,
                reader.task_counts(),
                dash.running_runs(),
                dash.spend_on(now.date()),
                waiting,
            )

    async def pending(self) -> str:
        def read() -> str:
            snap = self._peek()
            items = []
            for key, item in sorted(snap.items()):
                latest = self.requests.latest(key)
                items.append((latest.id if latest is not None else "(posting…)", item))
            return pending_text(items)

        return await asyncio.to_thread(read)

    def _peek(self) -> dict[tuple[str, str], Awaiting]:
        with self.host.open_reader() as (reader, dash):
            gov = read_governance(dash)
            return read_awaiting(reader, gov, self.clock()) if gov is not None else {}

    async def spend(self) -> str:
        def read() -> str:
            today = self.clock().date()
            with self.host.open_reader() as (reader, _):
                by_agent = reader.spend_by_agent(today)
                week = reader.spend_since(today - timedelta(days=6))
            return spend_text(today, by_agent, week)

        return await asyncio.to_thread(read)

    async def set_mode(self, who: Person, mode: str | None, reason: str) -> str:
        approver = await self.approver_for(who.user_id)
        action = f"/{'pause' if mode else 'resume'}"
        if approver is None:
            return self.refuse(who, action, NOT_APPROVER)
        why = reason or f"{'paused' if mode else 'resumed'} from Telegram by {approver}"
        try:
            done = await self._submit(SetMode(mode, f"telegram:{approver}", why))
        except TimeoutError:
            return QUEUED
        except MCError as exc:
            return f"Not done: {exc}"
        if mode is None:
            return f"▶ {done}: the mode committed in git applies again."
        return (
            f"⏸ {done} ({why}). No new work is dispatched until /resume or a commit changes"
            " the mission's mode; `mc status` and the dashboard show the override."
        )

    async def quarantine(self, who: Person, agent: str, reason: str) -> str:
        approver = await self.approver_for(who.user_id)
        if approver is None:
            return self.refuse(who, f"/quarantine {agent}", NOT_APPROVER)
        why = reason or f"quarantined from Telegram by {approver}"
        try:
            done = await self._submit(Quarantine(agent, f"telegram:{approver}", why))
        except TimeoutError:
            return QUEUED
        except MCError as exc:
            return f"Not done: {exc}"
        return f"🚫 {done} ({why}); a new spec for {agent} in git lifts it."

    def refuse(self, who: Person, action: str, reason: str, subject: str = "Mission") -> str:
        self._refused(who, action, reason, subject)
        return f"Refused: {reason}"

    # --- plumbing ------------------------------------------------------------------------------

    def _refused(self, who: Person, action: str, reason: str, subject: str) -> None:
        data = {
            "user_id": who.user_id,
            "username": who.username,
            "chat_id": who.chat_id,
            "action": action,
            "reason": reason,
        }
        log.warning("telegram: refused %s from user %s: %s", action, who.user_id, reason)
        self._record(NewEvent(f"telegram:{who.user_id}", REFUSED, subject, data))

    def _record(self, event: NewEvent) -> None:
        """Fire and forget: the loop appends the event when it next runs its requests."""
        done = self.host.submit(RecordEvents((event,)))
        done.add_done_callback(_log_failure)

    async def _submit(self, request: Request) -> str:
        done = self.host.submit(request)
        return await asyncio.wait_for(
            asyncio.wrap_future(done), timeout=self.settings.decision_timeout_s
        )

    def _messenger(self) -> Messenger:
        assert self.messenger is not None, "the bot attaches a messenger before syncing"
        return self.messenger


NOT_APPROVER = "you are not a declared approver of this mission"
UNKNOWN_REQUEST = "unknown request id (see /pending)"
STILL_POSTING = "this request is still being posted; try again in a moment"
QUEUED = "Queued: the reconciler is busy and has not confirmed it yet (see /status)"


def _outcome(item: Awaiting, approver: str, decision: str) -> tuple[str, bool]:
    """The line shown under the request, and whether it settles the request."""
    if decision == "deny":
        return f"🚫 denied by {approver} via Telegram — final until the content changes", True
    votes = len({*item.approved_by, approver})
    if votes >= item.needed:
        return (
            f"✅ approved by {approver} via Telegram ({votes} of {item.needed});"
            " the reconciler carries it out now",
            True,
        )
    return (
        f"✅ approved by {approver} via Telegram ({votes} of {item.needed});"
        f" still needed: {item.needed - votes}",
        False,
    )


def _seq(event: Event) -> int:
    return event.seq


def _log_failure(done: Future[str]) -> None:
    exc = done.exception()
    if exc is not None:
        log.warning("telegram: recording an event failed: %s", exc)
