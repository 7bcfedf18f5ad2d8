"""Retry timing: a pure function of the policy, the attempt number and an injected random
source; called by engine/outcome_rules.py when a run asks to be tried again."""

from __future__ import annotations

import random
from datetime import datetime

from specs.fields import duration_seconds
from specs.models import RetryPolicy
from specs.time_math import add_seconds


def retry_delay(policy: RetryPolicy, attempt: int, rng: random.Random) -> float:
    """Seconds before attempt `attempt + 1`: min(initial × backoff^(attempt−1), max) ± jitter."""
    base = duration_seconds(policy.initial_interval) * policy.backoff ** max(attempt - 1, 0)
    capped = min(base, duration_seconds(policy.max_interval))
    spread = capped * policy.jitter
    return max(0.0, capped + rng.uniform(-spread, spread))


def next_attempt_at(
    policy: RetryPolicy, attempt: int, now: datetime, rng: random.Random
) -> datetime:
    return add_seconds(now, retry_delay(policy, attempt, rng))
