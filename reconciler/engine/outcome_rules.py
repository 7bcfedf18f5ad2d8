"""Pure: what a run's progress means for its task — is the run still its task's, and what
does its end make of the task (done, review, retry later, failed, blocked). engine/enact.py
asks and writes the answer."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime

from reconciler.engine.retry import next_attempt_at
from reconciler.runtime.types import Outcome
from reconciler.tasks.lifecycle import ACTIVE, TaskState
from specs.models import TaskSpec

S = TaskState

ABANDON_LIMIT = 3  # lost heartbeats do not count as attempts, but cannot go on forever


@dataclass(frozen=True, slots=True)
class Settlement:
    target: TaskState
    reason: str
    attempts: int
    abandoned: int
    next_attempt_at: datetime | None = None
    error_class: str | None = None  # temporary | permanent | abandoned | canceled | verdict


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
                    S.REVIEW, "waiting for review (approval: after)", attempts, abandoned
                )
            return Settlement(S.DONE, "done", attempts, abandoned)
        case "canceled":
            if stopping:
                return Settlement(
                    S.INBOX,
                    "requeued: reconciler stopped",
                    attempts - 1,
                    abandoned,
                    None,
                    "canceled",
                )
            return Settlement(
                S.CANCELED, error or "canceled", attempts, abandoned, None, "canceled"
            )
        case "abandoned":
            if abandoned + 1 > ABANDON_LIMIT * policy.max_attempts:
                reason = f"abandoned {abandoned + 1} times (lost heartbeat): {error}"
                return Settlement(S.FAILED, reason, attempts - 1, abandoned + 1, None, "abandoned")
            return Settlement(
                S.INBOX, f"requeued: {error}", attempts - 1, abandoned + 1, None, "abandoned"
            )
        case "blocked":
            return Settlement(
                S.BLOCKED,
                f"agent: {error or 'needs a person'}",
                attempts,
                abandoned,
                None,
                "permanent",
            )
        case "failed":
            return Settlement(S.FAILED, f"failed: {error}", attempts, abandoned, None, "permanent")
        case "retry":
            return _retry(spec, attempts, abandoned, outcome, now, rng)


def _retry(
    spec: TaskSpec,
    attempts: int,
    abandoned: int,
    outcome: Outcome,
    now: datetime,
    rng: random.Random,
) -> Settlement:
    """A temporary failure: try again after the backoff, unless tries or the exit code say no."""
    policy, error = spec.retry, outcome.error or ""
    if outcome.exit_code is not None and outcome.exit_code in policy.non_retryable_exit_codes:
        reason = f"failed: exit code {outcome.exit_code} is not retryable: {error}"
        return Settlement(S.FAILED, reason, attempts, abandoned, None, "permanent")
    if attempts >= policy.max_attempts:
        reason = f"failed after {attempts} attempts: {error}"
        return Settlement(S.FAILED, reason, attempts, abandoned, None, "temporary")
    at = next_attempt_at(policy, attempts, now, rng)
    reason = f"retry {attempts + 1}/{policy.max_attempts} at {at:%H:%M:%S}: {error}"
    return Settlement(S.INBOX, reason, attempts, abandoned, at, "temporary")


def why_stale(state: TaskState | None, current_run: str | None, run_id: str) -> str | None:
    """Why a run's progress may no longer touch its task (None: it may). A run belongs to its
    task only while the task exists, is ASSIGNED or IN_PROGRESS, and is on this very run."""
    if state is None:
        return "task deleted"
    if state == S.CANCELED:
        return "task canceled"
    if state not in ACTIVE:
        return f"task is {state} now"
    if current_run is not None and current_run != run_id:
        return f"task replaced: it is on run {current_run} now"
    return None
