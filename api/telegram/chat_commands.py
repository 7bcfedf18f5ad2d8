"""The chat's slash commands (/status, /pending, /approve, /pause, …) as PTB handlers: parse
the arguments, check who may ask, call the bot's parts, reply. Installed by bot.py."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any, Protocol

from telegram import Update
from telegram.ext import ContextTypes

from api.telegram.core import BotCore
from api.telegram.render import HELP
from api.telegram.requests import Person

Handler = Callable[[Update, ContextTypes.DEFAULT_TYPE], Coroutine[Any, Any, None]]


class Replier(Protocol):
    def reply(self, chat_id: int, text: str, reply_to: int | None) -> None: ...


class ChatCommands:
    """One handler per slash command; reads are for the mission's chat and its approvers."""

    def __init__(self, core: BotCore, replier: Replier, chat_id: int) -> None:
        self.core, self.replier, self.chat_id = core, replier, chat_id

    def handlers(self) -> dict[str, Handler]:
        return {
            "status": self.status,
            "pending": self.pending,
            "approve": self.approve,
            "deny": self.deny,
            "changes": self.changes,
            "pause": self.pause,
            "resume": self.resume,
            "quarantine": self.quarantine,
            "spend": self.spend,
            "help": self.help,
            "start": self.help,
        }

    async def help(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        self._reply(update, HELP)

    async def status(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        if await self._may_read(update):
            self._reply(update, await self.core.operator.status())

    async def pending(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        if await self._may_read(update):
            self._reply(update, await self.core.approvals.pending())

    async def spend(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        if await self._may_read(update):
            self._reply(update, await self.core.operator.spend())

    async def approve(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await self._decide(update, context.args or [], "approve")

    async def deny(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await self._decide(update, context.args or [], "deny")

    async def changes(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await self._decide(update, context.args or [], "request_changes")

    async def _decide(self, update: Update, args: list[str], decision: str) -> None:
        if not args or (decision != "approve" and len(args) < 2):
            usage = {
                "approve": "/approve ID [comment]",
                "deny": "/deny ID REASON",
                "request_changes": "/changes ID FEEDBACK",
            }[decision]
            self._reply(update, f"Usage: {usage} (ids: /pending)")
            return
        comment = " ".join(args[1:]) or f"/{decision} in Telegram"
        who = person_of(update)
        self._reply(update, await self.core.approvals.decide(who, args[0], decision, comment))

    async def pause(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        reason = " ".join(context.args or [])
        self._reply(update, await self.core.operator.set_mode(person_of(update), "paused", reason))

    async def resume(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        self._reply(update, await self.core.operator.set_mode(person_of(update), None, ""))

    async def quarantine(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        args = context.args or []
        if not args:
            self._reply(update, "Usage: /quarantine AGENT [reason]")
            return
        who, reason = person_of(update), " ".join(args[1:])
        self._reply(update, await self.core.operator.quarantine(who, args[0], reason))

    async def _may_read(self, update: Update) -> bool:
        """The mission's chat may read; elsewhere only declared approvers."""
        who, link = person_of(update), self.core.link
        if who.chat_id == self.chat_id or await link.approver_for(who.user_id):
            return True
        self._reply(update, link.refuse(who, _text(update), "not the mission's chat"))
        return False

    def _reply(self, update: Update, text: str) -> None:
        chat, message = update.effective_chat, update.effective_message
        if chat is not None:
            self.replier.reply(chat.id, text, message.message_id if message else None)


def person_of(update: Update) -> Person:
    user = update.effective_user
    chat = update.effective_chat
    return Person(user.id if user else 0, user.username if user else None, chat.id if chat else 0)


def _text(update: Update) -> str:
    message = update.effective_message
    return (message.text or "")[:100] if message is not None else ""
