"""Outgoing Telegram calls, queued and retried with bounded backoff so an unreachable Telegram
only delays messages (the serve loop never waits on it). Run by the bot's event loop."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from telegram.error import BadRequest, Forbidden, InvalidToken, RetryAfter, TelegramError

log = logging.getLogger("mc.telegram")


@dataclass
class Outgoing:
    what: str  # for the log
    call: Callable[[], Awaitable[Any]]
    on_sent: Callable[[Any], None] | None = None
    on_given_up: Callable[[], None] | None = None


def backoff(attempt: int, initial: float, cap: float) -> float:
    """Seconds before retry `attempt` (1-based): doubling from `initial`, at most `cap`."""
    return float(min(initial * 2 ** (attempt - 1), cap))


class Outbox:
    def __init__(self, attempts: int, initial_s: float, cap_s: float, size: int) -> None:
        self.attempts, self.initial_s, self.cap_s = attempts, initial_s, cap_s
        self._queue: asyncio.Queue[Outgoing] = asyncio.Queue(maxsize=size)
        self.sent = 0
        self.given_up = 0

    def offer(self, item: Outgoing) -> bool:
        """Queue a call; False (and nothing queued) when the outbox is full."""
        try:
            self._queue.put_nowait(item)
        except asyncio.QueueFull:
            log.warning("telegram outbox full; dropped: %s", item.what)
            return False
        return True

    async def run(self, stop: asyncio.Event) -> None:
        """Send in order until `stop`; each call is retried on network trouble only."""
        while not stop.is_set():
            getter = asyncio.ensure_future(self._queue.get())
            stopper = asyncio.ensure_future(stop.wait())
            done, _ = await asyncio.wait({getter, stopper}, return_when=asyncio.FIRST_COMPLETED)
            stopper.cancel()
            if getter not in done:
                getter.cancel()
                return
            await self._deliver(getter.result(), stop)

    async def _deliver(self, item: Outgoing, stop: asyncio.Event) -> None:
        for attempt in range(1, self.attempts + 1):
            try:
                result = await item.call()
            except BadRequest as exc:
                if "not modified" in str(exc).lower():
                    result = None  # an edit that changes nothing has nothing left to do
                else:
                    log.warning("telegram refused %s: %s", item.what, exc)
                    break
            except RetryAfter as exc:
                delay = exc.retry_after
                seconds = delay if isinstance(delay, int | float) else delay.total_seconds()
                if await _sleep_or_stop(float(seconds) + 0.1, stop):
                    break
                continue
            except (Forbidden, InvalidToken) as exc:
                log.warning("telegram refused %s: %s", item.what, exc)
                break
            except TelegramError as exc:  # NetworkError, TimedOut: worth another try
                wait = backoff(attempt, self.initial_s, self.cap_s)
                log.info("telegram unreachable (%s); retrying %s in %.2fs", exc, item.what, wait)
                if attempt == self.attempts or await _sleep_or_stop(wait, stop):
                    break
                continue
            except Exception:  # a bug in one call must not stop the outbox
                log.exception("telegram: %s failed", item.what)
                break
            self.sent += 1
            if item.on_sent is not None:
                item.on_sent(result)
            return
        self.given_up += 1
        log.warning("telegram: gave up on %s", item.what)
        if item.on_given_up is not None:
            item.on_given_up()


async def _sleep_or_stop(seconds: float, stop: asyncio.Event) -> bool:
    """Sleep; True when `stop` was set meanwhile."""
    try:
        await asyncio.wait_for(stop.wait(), timeout=seconds)
    except TimeoutError:
        return False
    return True
