"""Where the bot talks and how briskly: the mission's `telegram:` section plus timing knobs.

Read by `mc serve` / `mc bot` before the bot thread starts; never imports the Telegram library.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from reconciler.repo.source import MissionRepo
from specs.errors import MCError
from specs.models import MissionSpec
from state.dashboard import DashboardReader


@dataclass(frozen=True)
class BotSettings:
    """Timings; the defaults suit api.telegram.org, tests shorten them."""

    poll_timeout_s: float = 10.0  # getUpdates long poll
    poll_interval_s: float = 0.0
    sync_interval_s: float = 1.0  # how often the state is read for requests and events
    quiet_s: float = 2.0  # a burst of notifications goes out once quiet this long …
    max_hold_s: float = 10.0  # … or this long after its first event at the latest
    per_minute: int = 6  # notification messages per minute, at most
    decision_timeout_s: float = 15.0  # waiting for the loop to record a decision
    send_attempts: int = 8  # per outgoing message, then it is dropped (requests are re-sent)
    backoff_initial_s: float = 0.25
    backoff_max_s: float = 8.0
    outbox_size: int = 500
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 10.0


@dataclass(frozen=True)
class BotConfig:
    chat_id: int
    token_env: str
    token: str = field(repr=False)
    base_url: str | None = None  # e.g. http://127.0.0.1:8081/bot (the token is appended)


class BotNotConfigured(MCError):
    """The mission names no chat, or the token's environment variable is not set."""


def resolve_config(spec: MissionSpec | None, environ: Mapping[str, str]) -> BotConfig:
    if spec is None or spec.telegram is None:
        raise BotNotConfigured("the mission has no `telegram:` section (chat_id, token)")
    tg = spec.telegram
    token = environ.get(tg.token.from_env, "")
    if not token:
        raise BotNotConfigured(
            f"mission.yaml names Telegram chat {tg.chat_id}, but ${tg.token.from_env}"
            " (its token) is not set"
        )
    return BotConfig(tg.chat_id, tg.token.from_env, token, tg.base_url)


def mission_for_bot(dash: DashboardReader, repo: MissionRepo) -> MissionSpec | None:
    """The applied mission; before the first apply, the one committed at HEAD."""
    applied = dash.resources_of_kind(["Mission"])
    if applied:
        return MissionSpec.model_validate(applied[0].spec)
    try:
        desired = repo.desired("HEAD")
    except MCError:
        return None
    return MissionSpec.model_validate(desired.mission.spec)
