"""python-telegram-bot adapters: the Application, its handlers (commands and Approve/Deny
buttons) and the Messenger that queues the core's messages through the outbox."""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable, Coroutine
from typing import Any

from telegram import BotCommand, InlineKeyboardButton, InlineKeyboardMarkup, Message, Update
from telegram.error import TelegramError
from telegram.ext import (
    Application,
    ApplicationBuilder,
    ApplicationHandlerStop,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    TypeHandler,
)

from api.telegram.config import BotConfig, BotSettings
from api.telegram.core import BotCore
from api.telegram.outbox import Outbox, Outgoing
from api.telegram.render import HELP, clip
from api.telegram.requests import Person, PostedRequest

log = logging.getLogger("mc.telegram")
App = Application[Any, Any, Any, Any, Any, Any]
Handler = Callable[[Update, ContextTypes.DEFAULT_TYPE], Coroutine[Any, Any, None]]
SEEN_LIMIT = 4096  # update and callback ids remembered for de-duplication
COMMANDS = {
    "status": "Tasks, running work, spend today, mode",
    "pending": "Approval requests waiting",
    "approve": "ID [comment] — approve a request",
    "deny": "ID REASON — deny a request",
    "pause": "[reason] — pause the mission (approvers)",
    "resume": "Lift the pause (approvers)",
    "quarantine": "AGENT [reason] — quarantine an agent (approvers)",
    "spend": "Spend by agent, today and 7 days",
    "help": "What the bot understands",
}


def build_application(config: BotConfig, settings: BotSettings) -> App:
    builder = (
        ApplicationBuilder()
        .token(config.token)
        .connect_timeout(settings.connect_timeout_s)
        .read_timeout(settings.read_timeout_s)
        .write_timeout(settings.read_timeout_s)
        .pool_timeout(settings.connect_timeout_s)
        .get_updates_connect_timeout(settings.connect_timeout_s)
        .get_updates_read_timeout(settings.poll_timeout_s + settings.read_timeout_s)
        .get_updates_pool_timeout(settings.connect_timeout_s)
    )
    if config.base_url:
        builder = builder.base_url(config.base_url)
    app: App = builder.build()
    return app


def keyboard(rid: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton("✅ Approve", callback_data=f"approve:{rid}"),
                InlineKeyboardButton("🚫 Deny", callback_data=f"deny:{rid}"),
            ]
        ]
    )


def request_message(req: PostedRequest) -> str:
    return clip("\n\n".join([req.text, "\n".join(req.outcomes)]) if req.outcomes else req.text)


class TelegramMessenger:
    """The core's messages as queued Bot API calls (sendMessage / editMessageText)."""

    def __init__(self, app: App, outbox: Outbox, chat_id: int) -> None:
        self.app, self.outbox, self.chat_id = app, outbox, chat_id

    def post_request(
        self, req: PostedRequest, on_sent: Callable[[int], None], on_failed: Callable[[], None]
    ) -> None:
        markup, text = keyboard(req.id), request_message(req)

        def sent(message: Message) -> None:
            on_sent(message.message_id)

        item = Outgoing(
            f"request {req.id} ({req.target})",
            lambda: self.app.bot.send_message(self.chat_id, text, reply_markup=markup),
            sent,
            on_failed,
        )
        if not self.outbox.offer(item):
            on_failed()

    def edit_request(self, req: PostedRequest, buttons: bool) -> None:
        message_id, text = req.message_id, request_message(req)
        markup = keyboard(req.id) if buttons else None
        self.outbox.offer(
            Outgoing(
                f"edit of request {req.id}",
                lambda: self.app.bot.edit_message_text(
                    text, chat_id=req.chat_id, message_id=message_id, reply_markup=markup
                ),
            )
        )

    def notify(self, text: str) -> None:
        self.outbox.offer(
            Outgoing("notification", lambda: self.app.bot.send_message(self.chat_id, text))
        )

    def reply(self, chat_id: int, text: str, reply_to: int | None) -> None:
        self.outbox.offer(
            Outgoing(
                "reply",
                lambda: self.app.bot.send_message(
                    chat_id, clip(text), reply_to_message_id=reply_to
                ),
            )
        )


class Handlers:
    """Updates in, core calls, answers out. Duplicated updates are dropped before any handler."""

    def __init__(self, core: BotCore, messenger: TelegramMessenger, chat_id: int) -> None:
        self.core, self.messenger, self.chat_id = core, messenger, chat_id
        self._seen: OrderedDict[str, None] = OrderedDict()

    def install(self, app: App) -> None:
        app.add_handler(TypeHandler(Update, self.dedupe), group=-1)
        commands: dict[str, Handler] = {
            "status": self.status,
            "pending": self.pending,
            "approve": self.approve,
            "deny": self.deny,
            "pause": self.pause,
            "resume": self.resume,
            "quarantine": self.quarantine,
            "spend": self.spend,
            "help": self.help,
            "start": self.help,
        }
        for name, handler in commands.items():
            app.add_handler(CommandHandler(name, handler))
        app.add_handler(CallbackQueryHandler(self.button))
        app.add_error_handler(self.on_error)

    async def set_commands(self, app: App) -> None:
        await app.bot.set_my_commands([BotCommand(k, v) for k, v in COMMANDS.items()])

    # --- de-duplication ------------------------------------------------------------------------

    async def dedupe(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        keys = [f"u:{update.update_id}"]
        if update.callback_query is not None:
            keys.append(f"q:{update.callback_query.id}")
        if any(k in self._seen for k in keys):
            log.info("telegram: duplicate update %s ignored", update.update_id)
            raise ApplicationHandlerStop
        for k in keys:
            self._seen[k] = None
        while len(self._seen) > SEEN_LIMIT:
            self._seen.popitem(last=False)

    # --- buttons -------------------------------------------------------------------------------

    async def button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        if query is None:
            return
        decision, _, rid = (query.data or "").partition(":")
        who = Person(query.from_user.id, query.from_user.username, _chat_of(query.message))
        if decision not in ("approve", "deny") or not rid:
            text = "Refused: not a button of this bot"
        elif who.chat_id != self.chat_id:
            text = self.core.refuse(who, f"{decision} {rid}", "buttons count only in the chat")
        else:
            comment = f"{decision} pressed in Telegram"
            text = await self.core.decide(who, rid, decision, comment)
        try:
            await query.answer(text[:200], show_alert=text.startswith("Refused"))
        except TelegramError as exc:
            log.info("telegram: could not answer a button press: %s", exc)

    # --- commands ------------------------------------------------------------------------------

    async def help(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        self._reply(update, HELP)

    async def status(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        if await self._may_read(update):
            self._reply(update, await self.core.status())

    async def pending(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        if await self._may_read(update):
            self._reply(update, await self.core.pending())

    async def spend(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        if await self._may_read(update):
            self._reply(update, await self.core.spend())

    async def approve(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await self._decide(update, context.args or [], "approve")

    async def deny(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await self._decide(update, context.args or [], "deny")

    async def _decide(self, update: Update, args: list[str], decision: str) -> None:
        if not args or (decision == "deny" and len(args) < 2):
            usage = "/approve ID [comment]" if decision == "approve" else "/deny ID REASON"
            self._reply(update, f"Usage: {usage} (ids: /pending)")
            return
        comment = " ".join(args[1:]) or f"/{decision} in Telegram"
        self._reply(
            update, await self.core.decide(self._person(update), args[0], decision, comment)
        )

    async def pause(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        reason = " ".join(context.args or [])
        self._reply(update, await self.core.set_mode(self._person(update), "paused", reason))

    async def resume(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        self._reply(update, await self.core.set_mode(self._person(update), None, ""))

    async def quarantine(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        args = context.args or []
        if not args:
            self._reply(update, "Usage: /quarantine AGENT [reason]")
            return
        who, reason = self._person(update), " ".join(args[1:])
        self._reply(update, await self.core.quarantine(who, args[0], reason))

    async def on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        log.warning("telegram: handler failed: %r", context.error)

    # --- helpers -------------------------------------------------------------------------------

    async def _may_read(self, update: Update) -> bool:
        """The mission's chat may read; elsewhere only declared approvers."""
        who = self._person(update)
        if who.chat_id == self.chat_id or await self.core.approver_for(who.user_id):
            return True
        self._reply(update, self.core.refuse(who, _text(update), "not the mission's chat"))
        return False

    def _person(self, update: Update) -> Person:
        user = update.effective_user
        chat = update.effective_chat
        return Person(
            user.id if user else 0, user.username if user else None, chat.id if chat else 0
        )

    def _reply(self, update: Update, text: str) -> None:
        chat, message = update.effective_chat, update.effective_message
        if chat is not None:
            self.messenger.reply(chat.id, text, message.message_id if message else None)


def _chat_of(message: object) -> int:
    chat = getattr(message, "chat", None)
    return int(getattr(chat, "id", 0))


def _text(update: Update) -> str:
    message = update.effective_message
    return (message.text or "")[:100] if message is not None else ""
