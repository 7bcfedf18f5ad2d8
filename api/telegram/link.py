"""What every part of the bot shares: the serve loop it reads and asks for writes, the clock and
the chat it answers in. Used by core.py, approval_desk.py and operator.py; no Telegram library.

Reads go through the serve loop's reader cursors (off the event loop, `asyncio.to_thread`);
writes are requests the loop performs (`Host.submit`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import Future
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Protocol

from api.telegram.awaiting import read_governance
from api.telegram.config import BotSettings
from api.telegram.requests import REFUSED, Person, PostedRequest
from reconciler.repo.source import MissionRepo
from reconciler.serve.requests import RecordEvents, Request
from state.dashboard import DashboardReader
from state.records import NewEvent
from state.store import StateReader

log = logging.getLogger("mc.telegram")
Clock = Callable[[], datetime]

NOT_APPROVER = "you are not a declared approver of this mission"
QUEUED = "Queued: the reconciler is busy and has not confirmed it yet (see /status)"


class Host(Protocol):
    """What the bot needs of the serve loop (reconciler.serve.loop.ReconcileLoop)."""

    def open_reader(self) -> AbstractContextManager[tuple[StateReader, DashboardReader]]: ...

    def submit(self, request: Request) -> Future[str]: ...


class Messenger(Protocol):
    """How the bot's messages reach the chat (queued and retried by the implementation)."""

    def post_request(
        self, req: PostedRequest, on_sent: Callable[[int], None], on_failed: Callable[[], None]
    ) -> None: ...

    def edit_request(self, req: PostedRequest, buttons: bool) -> None: ...

    def notify(self, text: str) -> None: ...


class BotLink:
    """The serve loop, the clock, the mission's chat and the messenger, for every bot part."""

    def __init__(
        self, host: Host, repo: MissionRepo, clock: Clock, chat_id: int, settings: BotSettings
    ) -> None:
        self.host, self.repo, self.clock, self.chat_id = host, repo, clock, chat_id
        self.settings = settings
        self.messenger: Messenger | None = None

    def chat(self) -> Messenger:
        assert self.messenger is not None, "the bot attaches a messenger before syncing"
        return self.messenger

    async def approver_for(self, user_id: int) -> str | None:
        """The declared approver this Telegram user is, if any (read on fresh state)."""

        def find() -> str | None:
            with self.host.open_reader() as (_, dash):
                gov = read_governance(dash)
            return gov.approver_for(user_id) if gov is not None else None

        return await asyncio.to_thread(find)

    def refuse(self, who: Person, action: str, reason: str, subject: str = "Mission") -> str:
        """Record a refusal in the audit log; the answer to show."""
        data = {
            "user_id": who.user_id,
            "username": who.username,
            "chat_id": who.chat_id,
            "action": action,
            "reason": reason,
        }
        log.warning("telegram: refused %s from user %s: %s", action, who.user_id, reason)
        self.record(NewEvent(f"telegram:{who.user_id}", REFUSED, subject, data))
        return f"Refused: {reason}"

    def record(self, event: NewEvent) -> None:
        """Fire and forget: the loop appends the event when it next runs its requests."""
        done = self.host.submit(RecordEvents((event,)))
        done.add_done_callback(_log_failure)

    async def submit(self, request: Request) -> str:
        """A write the loop carries out; its one-line outcome (TimeoutError when it is busy)."""
        done = self.host.submit(request)
        return await asyncio.wait_for(
            asyncio.wrap_future(done), timeout=self.settings.decision_timeout_s
        )


def _log_failure(done: Future[str]) -> None:
    exc = done.exception()
    if exc is not None:
        log.warning("telegram: recording an event failed: %s", exc)
