"""python-telegram-bot adapters: the Application, its handlers (commands and Approve/Deny
buttons) and the Messenger that queues the core's messages through the outbox."""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable
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
    MessageHandler,
    TypeHandler,
    filters,
)

from api.telegram.chat_commands import ChatCommands, person_of
from api.telegram.config import BotConfig, BotSettings
from api.telegram.core import BotCore
from api.telegram.outbox import Outbox, Outgoing
from api.telegram.render import clip
from api.telegram.requests import Person, PostedRequest

log = logging.getLogger("mc.telegram")
App = Application[Any, Any, Any, Any, Any, Any]
SEEN_LIMIT = 4096  # update and callback ids remembered for de-duplication
COMMANDS = {
    "status": "Tasks, running work, spend today, mode",
    "pending": "Approval requests waiting",
    "approve": "ID [comment] — approve a request",
    "deny": "ID REASON — deny a request",
    "changes": "ID FEEDBACK — send a task in review back to its agent",
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


def keyboard(rid: str, review: bool = False) -> InlineKeyboardMarkup:
    """Approve / Deny, and Request changes for a task's review."""
    row = [
        InlineKeyboardButton("✅ Approve", callback_data=f"approve:{rid}"),
        InlineKeyboardButton("🚫 Deny", callback_data=f"deny:{rid}"),
    ]
    if review:
        row.append(InlineKeyboardButton("✏️ Request changes", callback_data=f"changes:{rid}"))
    return InlineKeyboardMarkup([row])


CHANGES_HOW = (
    "Reply to this request message with what should change: the task goes back to its agent"
    " with your words as feedback (or /changes {rid} FEEDBACK)"
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
        markup, text = keyboard(req.id, req.action == "review"), request_message(req)

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
        markup = keyboard(req.id, req.action == "review") if buttons else None
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
        self.commands = ChatCommands(core, messenger, chat_id)
        self._seen: OrderedDict[str, None] = OrderedDict()

    def install(self, app: App) -> None:
        app.add_handler(TypeHandler(Update, self.dedupe), group=-1)
        for name, handler in self.commands.handlers().items():
            app.add_handler(CommandHandler(name, handler))
        app.add_handler(CallbackQueryHandler(self.button))
        replies = filters.REPLY & filters.TEXT & ~filters.COMMAND
        app.add_handler(MessageHandler(replies, self.changes_reply))
        app.add_error_handler(self.on_error)

    async def set_commands(self, app: App) -> None:
        await app.bot.set_my_commands([BotCommand(k, v) for k, v in COMMANDS.items()])

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

    async def button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """An Approve/Deny press: counts only in the mission's chat."""
        query = update.callback_query
        if query is None:
            return
        decision, _, rid = (query.data or "").partition(":")
        who = Person(query.from_user.id, query.from_user.username, _chat_of(query.message))
        if decision == "changes" and rid:
            text = CHANGES_HOW.format(rid=rid)  # the feedback comes as a reply
        elif decision not in ("approve", "deny") or not rid:
            text = "Refused: not a button of this bot"
        elif who.chat_id != self.chat_id:
            text = self.core.link.refuse(who, f"{decision} {rid}", "buttons count only in the chat")
        else:
            comment = f"{decision} pressed in Telegram"
            text = await self.core.approvals.decide(who, rid, decision, comment)
        try:
            await query.answer(text[:200], show_alert=text.startswith("Refused"))
        except TelegramError as exc:
            log.info("telegram: could not answer a button press: %s", exc)

    async def changes_reply(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A text reply to a posted request: request changes with the text as feedback."""
        message = update.effective_message
        target = message.reply_to_message if message is not None else None
        if message is None or target is None or not message.text:
            return
        req = self.core.approvals.requests.by_message(_chat_of(target), target.message_id)
        if req is None:
            return  # a reply to something else: not ours to read
        who = person_of(update)
        if who.chat_id != self.chat_id:
            text = self.core.link.refuse(who, f"changes {req.id}", "only in the mission's chat")
        else:
            text = await self.core.approvals.decide(who, req.id, "request_changes", message.text)
        self.messenger.reply(who.chat_id, text, message.message_id)

    async def on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        log.warning("telegram: handler failed: %r", context.error)


def _chat_of(message: object) -> int:
    chat = getattr(message, "chat", None)
    return int(getattr(chat, "id", 0))
