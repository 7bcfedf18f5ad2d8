"""Start the bot beside a serve loop when the mission configures it; loads python-telegram-bot
only then (it costs ~0.6 s to import). Called by `mc serve` and `mc bot`."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from api.telegram.config import BotConfig, BotNotConfigured, BotSettings, mission_for_bot
from api.telegram.config import resolve_config as _resolve
from api.telegram.link import Clock, Host
from reconciler.repo.source import MissionRepo

if TYPE_CHECKING:
    from api.telegram.service import BotService


def bot_config(host: Host, repo: MissionRepo, environ: Mapping[str, str]) -> BotConfig:
    """The applied mission's chat and the token from the environment, or BotNotConfigured."""
    with host.open_reader() as (_, dash):
        spec = mission_for_bot(dash, repo)
    return _resolve(spec, environ)


def start_bot(
    host: Host,
    repo: MissionRepo,
    clock: Clock,
    config: BotConfig,
    settings: BotSettings | None = None,
) -> BotService:
    from api.telegram.service import BotService

    service = BotService(host, repo, clock, config, settings)
    service.start()
    return service


def start_if_configured(
    host: Host, repo: MissionRepo, clock: Clock, say: Callable[[str], None]
) -> BotService | None:
    """The bot when the mission names a chat and its token is set; otherwise say why not."""
    try:
        config = bot_config(host, repo, os.environ)
    except BotNotConfigured as exc:
        if "no `telegram:` section" not in str(exc):
            say(f"Telegram: {exc}; the bot is not started")
        return None
    service = start_bot(host, repo, clock, config)
    via = f" via {config.base_url}" if config.base_url else ""
    say(f"Telegram: bot running for chat {config.chat_id}{via}")
    return service
