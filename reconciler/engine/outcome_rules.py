"""Pure: what a finished run means for its task (done, review, retry later, failed, blocked)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime

from reconciler.engine.retry import next_attempt_at
from reconciler.runtime.types import Outcome
from specs.models import TaskSpec

ABANDON_LIMIT = 3  # lost heartbeats do not count as attempts, but cannot go on forever


@dataclass(frozen=True, slots=True)
class Settlement:
    target: str
    reason: str
    attempts: int
    abandoned: int
    next_attempt_at: datetime | None = None
    error_class: str | None = None  # temporary | permanent | abandoned | canceled


def settle(
    spec: TaskSpec,
    attempts: int,
    abandoned: int,
    outcome: Outcome,
    now: datetime,
    rng: random.Random,
    stopping: bool = False,
) -> Settlement:
    """`attempts` already counts this run. Stopping (Ctrl-C, shutdown) requeues without cost."""
    policy = spec.retry
    error = outcome.error or ""
    match outcome.status:
        case "done":
            if spec.approval == "after":
                return Settlement(
                    "REVIEW", "waiting for review (approval: after)", attempts, abandoned
                )
            return Settlement("DONE", "done", attempts, abandoned)
        case "canceled":
            if stopping:
                return Settlement(
                    "INBOX",
                    "requeued: reconciler stopped",
                    attempts - 1,
                    abandoned,
                    None,
                    "canceled",
                )
            return Settlement(
                "CANCELED", error or "canceled", attempts, abandoned, None, "canceled"
            )
        case "abandoned":
            if abandoned + 1 > ABANDON_LIMIT * policy.max_attempts:
                reason = f"abandoned {abandoned + 1} times (lost heartbeat): {error}"
                return Settlement("FAILED", reason, attempts - 1, abandoned + 1, None, "abandoned")
            return Settlement(
                "INBOX", f"requeued: {error}", attempts - 1, abandoned + 1, None, "abandoned"
            )
        case "blocked":
            return Settlement(
                "BLOCKED",
                f"agent: {error or 'needs a person'}",
                attempts,
                abandoned,
                None,
                "permanent",
            )
        case "failed":
            return Settlement("FAILED", f"failed: {error}", attempts, abandoned, None, "permanent")
        case "retry":
            if (
                outcome.exit_code is not None
                and outcome.exit_code in policy.non_retryable_exit_codes
            ):
                reason = f"failed: exit code {outcome.exit_code} is not retryable: {error}"
                return Settlement("FAILED", reason, attempts, abandoned, None, "permanent")
            if attempts >= policy.max_attempts:
                reason = f"failed after {attempts} attempts: {error}"
                return Settlement("FAILED", reason, attempts, abandoned, None, "temporary")
            at = next_attempt_at(policy, attempts, now, rng)
            reason = f"retry {attempts + 1}/{policy.max_attempts} at {at:%H:%M:%S}: {error}"
            return Settlement("INBOX", reason, attempts, abandoned, at, "temporary")
