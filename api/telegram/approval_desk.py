"""The approvals flow in the chat: post a request for each target awaiting approval, keep it
up to date, judge an Approve/Deny on fresh state and record it. Used by core.py and bot.py."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta

from api.telegram.awaiting import (
    Awaiting,
    Description,
    Governance,
    describe,
    read_awaiting,
    read_governance,
)
from api.telegram.link import NOT_APPROVER, QUEUED, BotLink
from api.telegram.render import pending_text, request_text, votes_line
from api.telegram.requests import (
    CLOSED,
    POSTED,
    Person,
    PostedRequest,
    Refusal,
    Requests,
    approval_row,
    needs_new_request,
    refusal,
)
from reconciler.serve.requests import RecordApproval
from specs.errors import MCError
from state.dashboard import DashboardReader
from state.records import Event, NewEvent

EVENT_PAGE = 500
MARKER_PAGES = 200  # at most 100k markers are read back on start
UNKNOWN_REQUEST = "unknown request id (see /pending)"
STILL_POSTING = "this request is still being posted; try again in a moment"


@dataclass(frozen=True)
class Judgement:
    approver: str | None
    refused: Refusal | None
    item: Awaiting | None


class ApprovalDesk:
    """Approval requests posted in the chat, and the decisions made on them."""

    def __init__(self, link: BotLink) -> None:
        self.link = link
        self.requests = Requests()

    def restore(self, dash: DashboardReader) -> None:
        """What was already posted and closed (the markers), so nothing is posted twice."""
        markers: list[Event] = []
        for kind in (POSTED, CLOSED):
            after = 0
            for _ in range(MARKER_PAGES):
                page = dash.event_page(after=after, kind=kind, limit=EVENT_PAGE)
                markers += page
                if len(page) < EVENT_PAGE:
                    break
                after = max(e.seq for e in page)
        self.requests.restore(sorted(markers, key=_seq), self.link.chat_id)

    def open_targets(self) -> list[str]:
        return sorted({r.target for r in self.requests.open()})

    async def sync(self, gov: Governance, awaiting: dict[tuple[str, str], Awaiting]) -> None:
        """Post what newly awaits approval; close or update the requests already posted."""
        for item in self._to_post(awaiting, gov.ttl):
            desc = await asyncio.to_thread(self._describe, item)
            self._post(item, desc)
        self._refresh_open(awaiting)

    # --- posting -------------------------------------------------------------------------------

    def _describe(self, item: Awaiting) -> Description:
        with self.link.host.open_reader() as (reader, _):
            return describe(item, reader, self.link.repo)

    def _to_post(self, awaiting: dict[tuple[str, str], Awaiting], ttl: timedelta) -> list[Awaiting]:
        now, out = self.link.clock(), []
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
        link = self.link
        req = PostedRequest(
            rid, item.target, item.digest, item.risk, link.chat_id, link.clock(), text
        )
        req.action = item.action
        req.shown_votes = item.approved_by
        self.requests.add(req)
        link.chat().post_request(
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
        self.link.record(NewEvent("telegram", POSTED, req.target, data))

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
                self.link.chat().edit_request(req, buttons=True)

    def _close(self, req: PostedRequest, outcome: str) -> None:
        req.closed = True
        req.outcomes.append(outcome)
        if req.message_id is not None:
            self.link.chat().edit_request(req, buttons=False)
            data = {"request": req.id, "chat_id": req.chat_id, "outcome": outcome}
            self.link.record(NewEvent("telegram", CLOSED, req.target, data))

    # --- decisions -----------------------------------------------------------------------------

    async def decide(self, who: Person, rid: str, decision: str, comment: str) -> str:
        """An approve/deny from a button or a command: judged on fresh state, then recorded."""
        req = self.requests.get(rid)
        verdict = await asyncio.to_thread(self._judge, who, req)
        if verdict.refused is not None:
            subject = req.target if req is not None else "Mission"
            answer = self.link.refuse(who, f"{decision} {rid}", verdict.refused.reason, subject)
            if verdict.refused.ends_request and req is not None and not req.closed:
                self._close(req, f"⛔ {decision} by {verdict.approver}: {verdict.refused.reason}")
            return answer
        assert req is not None and verdict.approver is not None and verdict.item is not None
        if decision == "request_changes" and verdict.item.action != "review":
            why = "changes can be requested only on a task waiting in REVIEW"
            return self.link.refuse(who, f"{decision} {rid}", why, req.target)
        row = approval_row(req, verdict.approver, decision, comment, who, self.link.clock())
        try:
            await self.link.submit(RecordApproval(row))
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
            self.link.chat().edit_request(req, buttons=True)
        return outcome

    def _judge(self, who: Person, req: PostedRequest | None) -> Judgement:
        now = self.link.clock()
        with self.link.host.open_reader() as (reader, dash):
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

    # --- /pending ------------------------------------------------------------------------------

    async def pending(self) -> str:
        def read() -> str:
            items = []
            for key, item in sorted(self._peek().items()):
                latest = self.requests.latest(key)
                items.append((latest.id if latest is not None else "(posting…)", item))
            return pending_text(items)

        return await asyncio.to_thread(read)

    def _peek(self) -> dict[tuple[str, str], Awaiting]:
        with self.link.host.open_reader() as (reader, dash):
            gov = read_governance(dash)
            return read_awaiting(reader, gov, self.link.clock()) if gov is not None else {}


def _outcome(item: Awaiting, approver: str, decision: str) -> tuple[str, bool]:
    """The line shown under the request, and whether it settles the request."""
    if decision == "deny":
        return f"🚫 denied by {approver} via Telegram — final until the content changes", True
    if decision == "request_changes":
        return (
            f"✏️ changes requested by {approver} via Telegram; the task goes back to its agent"
            " with the feedback",
            True,
        )
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
