"""The operator's chat commands: /status and /spend reports, /pause, /resume and /quarantine
(approvers only, carried out by the serve loop). Used by bot.py's command handlers."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from api.telegram.awaiting import read_awaiting, read_governance
from api.telegram.link import NOT_APPROVER, QUEUED, BotLink
from api.telegram.render import spend_text, status_text
from api.telegram.requests import Person
from reconciler.engine.mirror import effective_mode
from reconciler.serve.requests import Quarantine, SetMode
from specs.errors import MCError


class Operator:
    """Reports on the live state, and the overrides an approver may make from the chat."""

    def __init__(self, link: BotLink) -> None:
        self.link = link

    async def status(self) -> str:
        return await asyncio.to_thread(self._status)

    def _status(self) -> str:
        now = self.link.clock()
        with self.link.host.open_reader() as (reader, dash):
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

    async def spend(self) -> str:
        def read() -> str:
            today = self.link.clock().date()
            with self.link.host.open_reader() as (reader, _):
                by_agent = reader.spend_by_agent(today)
                week = reader.spend_since(today - timedelta(days=6))
            return spend_text(today, by_agent, week)

        return await asyncio.to_thread(read)

    async def set_mode(self, who: Person, mode: str | None, reason: str) -> str:
        approver = await self.link.approver_for(who.user_id)
        action = f"/{'pause' if mode else 'resume'}"
        if approver is None:
            return self.link.refuse(who, action, NOT_APPROVER)
        why = reason or f"{'paused' if mode else 'resumed'} from Telegram by {approver}"
        try:
            done = await self.link.submit(SetMode(mode, f"telegram:{approver}", why))
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
        approver = await self.link.approver_for(who.user_id)
        if approver is None:
            return self.link.refuse(who, f"/quarantine {agent}", NOT_APPROVER)
        why = reason or f"quarantined from Telegram by {approver}"
        try:
            done = await self.link.submit(Quarantine(agent, f"telegram:{approver}", why))
        except TimeoutError:
            return QUEUED
        except MCError as exc:
            return f"Not done: {exc}"
        return f"🚫 {done} ({why}); a new spec for {agent} in git lifts it."
