"""What the bot does, minus the Telegram library: the periodic sync that posts approval
requests and sends notifications, and the parts the chat handlers call.

The parts by role: approval_desk.py (requests and decisions), operator.py (reports and
overrides), notify.py (what an event says, batched), link.py (the serve loop and the chat they
share). The PTB adapters in bot.py and the sync timer in service.py call into this.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from api.telegram.approval_desk import EVENT_PAGE, ApprovalDesk
from api.telegram.awaiting import Awaiting, Governance, read_awaiting, read_governance
from api.telegram.config import BotSettings
from api.telegram.link import BotLink, Clock, Host, Messenger
from api.telegram.notify import NoticeBuffer, notice_of
from api.telegram.operator import Operator
from reconciler.repo.source import MissionRepo
from state.records import Event


@dataclass(frozen=True)
class Snapshot:
    gov: Governance | None
    awaiting: dict[tuple[str, str], Awaiting]
    events: list[Event]


class BotCore:
    """The bot's parts over one link to the serve loop, and the sync that drives them."""

    def __init__(
        self,
        host: Host,
        repo: MissionRepo,
        clock: Clock,
        chat_id: int,
        settings: BotSettings,
    ) -> None:
        self.link = BotLink(host, repo, clock, chat_id, settings)
        self.approvals = ApprovalDesk(self.link)
        self.operator = Operator(self.link)
        self.notices = NoticeBuffer(settings.quiet_s, settings.max_hold_s, settings.per_minute)
        self.cursor = 0

    def attach(self, messenger: Messenger) -> None:
        self.link.messenger = messenger

    def load(self) -> None:
        """Where notifications start (events from now on) and what was already posted."""
        with self.link.host.open_reader() as (_, dash):
            self.cursor = dash.last_event_seq()
            self.approvals.restore(dash)

    async def sync_once(self) -> None:
        snap = await asyncio.to_thread(self._snapshot, self.approvals.open_targets())
        if snap.gov is not None and snap.gov.approvers:
            await self.approvals.sync(snap.gov, snap.awaiting)
        now = time.monotonic()
        self.notices.add([n for e in snap.events if (n := notice_of(e)) is not None], now)
        text = self.notices.due(now)
        if text is not None:
            self.link.chat().notify(text)

    def _snapshot(self, open_targets: list[str]) -> Snapshot:
        now = self.link.clock()
        with self.link.host.open_reader() as (reader, dash):
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


def _seq(event: Event) -> int:
    return event.seq
