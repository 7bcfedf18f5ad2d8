"""The bot's thread: its own asyncio event loop running python-telegram-bot (long polling),
the outbox and the periodic sync, started by `mc serve` / `mc bot` beside the reconcile loop.

Nothing here blocks the reconcile loop: decisions and markers are queued as requests, and an
unreachable Telegram only delays the bot (start-up, sends and polling retry with backoff).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Awaitable

from telegram import Update
from telegram.error import InvalidToken, TelegramError

from api.telegram.bot import App, Handlers, TelegramMessenger, build_application
from api.telegram.config import BotConfig, BotSettings
from api.telegram.core import BotCore
from api.telegram.link import Clock, Host
from api.telegram.outbox import Outbox, backoff
from reconciler.repo.source import MissionRepo

log = logging.getLogger("mc.telegram")


class BotService:
    def __init__(
        self,
        host: Host,
        repo: MissionRepo,
        clock: Clock,
        config: BotConfig,
        settings: BotSettings | None = None,
    ) -> None:
        self.config = config
        self.settings = settings or BotSettings()
        self.core = BotCore(host, repo, clock, config.chat_id, self.settings)
        self.core.load()  # before the loop runs: no event of this run goes unnoticed
        self.ready = threading.Event()  # set once polling runs (tests and logs wait on it)
        self._stop_requested = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run_thread, name="telegram", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop_requested.set()
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None:
            with contextlib.suppress(RuntimeError):  # the event loop already ended
                loop.call_soon_threadsafe(stop.set)
        if self._thread is not None:
            self._thread.join(timeout)

    # --- the thread ----------------------------------------------------------------------------

    def _run_thread(self) -> None:
        try:
            asyncio.run(self._main())
        except Exception:  # the bot must never take `mc serve` down with it
            log.exception("telegram bot stopped by an error")

    async def _main(self) -> None:
        self._stop = stop = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        if self._stop_requested.is_set():
            return
        s = self.settings
        outbox = Outbox(s.send_attempts, s.backoff_initial_s, s.backoff_max_s, s.outbox_size)
        app = build_application(self.config, s)
        messenger = TelegramMessenger(app, outbox, self.config.chat_id)
        handlers = Handlers(self.core, messenger, self.config.chat_id)
        handlers.install(app)
        self.core.attach(messenger)
        if not await self._connect(app, stop):
            await _shutdown(app)
            return
        self.ready.set()
        log.info("telegram bot polling for chat %s", self.config.chat_id)
        tasks = [
            asyncio.create_task(outbox.run(stop), name="telegram-outbox"),
            asyncio.create_task(self._sync_forever(stop), name="telegram-sync"),
            asyncio.create_task(_best_effort(handlers.set_commands(app)), name="commands"),
        ]
        await stop.wait()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await _shutdown(app)

    async def _connect(self, app: App, stop: asyncio.Event) -> bool:
        """Initialize and start polling, retrying while Telegram is unreachable."""
        s = self.settings
        for attempt in range(1, 1_000_000):
            try:
                await app.initialize()
                await app.start()
                assert app.updater is not None
                await app.updater.start_polling(
                    poll_interval=s.poll_interval_s,
                    timeout=int(s.poll_timeout_s),
                    bootstrap_retries=3,
                    allowed_updates=[Update.MESSAGE, Update.CALLBACK_QUERY],
                    error_callback=_polling_error,
                )
                return True
            except InvalidToken as exc:
                log.error("telegram: the token was refused (%s); the bot stays off", exc)
                return False
            except TelegramError as exc:
                wait = backoff(attempt, s.backoff_initial_s, s.backoff_max_s)
                log.warning("telegram unreachable (%s); retrying in %.1fs", exc, wait)
                if app.running:
                    await app.stop()
            try:
                await asyncio.wait_for(stop.wait(), timeout=wait)
                return False
            except TimeoutError:
                continue
        return False

    async def _sync_forever(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.core.sync_once()
            except Exception:  # a bad read must not end the bot; the next sync tries again
                log.exception("telegram sync failed")
            try:
                await asyncio.wait_for(stop.wait(), timeout=self.settings.sync_interval_s)
            except TimeoutError:
                continue


def _polling_error(exc: TelegramError) -> None:
    log.info("telegram polling: %s", exc)


async def _best_effort(step: Awaitable[object]) -> None:
    try:
        await step
    except TelegramError as exc:
        log.info("telegram: %s", exc)


async def _shutdown(app: App) -> None:
    try:
        if app.updater is not None and app.updater.running:
            await app.updater.stop()
        if app.running:
            await app.stop()
        await app.shutdown()
    except (TelegramError, RuntimeError) as exc:
        log.info("telegram shutdown: %s", exc)
