"""Pure settlement: what each way a run can end means for its task."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

import pytest

from reconciler.engine.outcome_rules import ABANDON_LIMIT, Settlement, settle
from reconciler.engine.retry import next_attempt_at
from reconciler.runtime.types import Outcome, OutcomeStatus
from reconciler.tasks.lifecycle import TaskState
from specs.models import TaskSpec

NOW = datetime(2026, 11, 23, 12, 0, 0)


def spec(**kw: Any) -> TaskSpec:
    retry = {"max_attempts": 3, "initial_interval": "100ms", "max_interval": "1s"}
    retry.update(kw.pop("retry", {}))
    return TaskSpec.model_validate({"title": "t", "agent": "w", "retry": retry, **kw})


def outcome(status: OutcomeStatus, error: str | None = None, exit_code: int | None = 0) -> Outcome:
    return Outcome("r-1", status, error, exit_code, started_at=0.0, ended_at=1.0)


def run(
    status: OutcomeStatus,
    *,
    attempts: int = 1,
    abandoned: int = 0,
    error: str | None = "boom",
    exit_code: int | None = 1,
    stopping: bool = False,
    **spec_kw: Any,
) -> Settlement:
    return settle(
        spec(**spec_kw),
        attempts,
        abandoned,
        outcome(status, error, exit_code),
        NOW,
        random.Random(1),
        stopping,
    )


def test_done_is_done() -> None:
    s = run("done", error=None, exit_code=0)
    assert s == Settlement(TaskState.DONE, "done", 1, 0)


def test_done_under_approval_after_waits_for_review() -> None:
    s = run("done", error=None, exit_code=0, approval="after", attempts=2)
    assert (s.target, s.attempts, s.next_attempt_at) == ("REVIEW", 2, None)
    assert "review" in s.reason


@pytest.mark.parametrize("attempts", [1, 2])
def test_retry_with_attempts_left_requeues_after_the_backoff(attempts: int) -> None:
    s = run("retry", attempts=attempts, error="exited with code 1")
    expected_at = next_attempt_at(spec().retry, attempts, NOW, random.Random(1))
    assert s.target == "INBOX"
    assert s.attempts == attempts
    assert s.next_attempt_at == expected_at
    assert s.next_attempt_at is not None and s.next_attempt_at > NOW
    assert s.error_class == "temporary"
    assert s.reason.startswith(f"retry {attempts + 1}/3 at ")
    assert s.reason.endswith(": exited with code 1")


def test_the_backoff_grows_between_attempts() -> None:
    first = run("retry", attempts=1, retry={"jitter": 0}).next_attempt_at
    second = run("retry", attempts=2, retry={"jitter": 0}).next_attempt_at
    assert first == NOW + timedelta(milliseconds=100)
    assert second == NOW + timedelta(milliseconds=200)


def test_retry_on_the_last_attempt_fails_counting_every_attempt() -> None:
    s = run("retry", attempts=3, error="exited with code 1")
    assert s.target == "FAILED"
    assert s.attempts == 3
    assert s.next_attempt_at is None
    assert s.error_class == "temporary"
    assert s.reason == "failed after 3 attempts: exited with code 1"


def test_a_non_retryable_exit_code_fails_permanently_with_attempts_left() -> None:
    s = run("retry", attempts=1, exit_code=3, retry={"non_retryable_exit_codes": [3, 4]})
    assert (s.target, s.attempts, s.error_class) == ("FAILED", 1, "permanent")
    assert "exit code 3 is not retryable" in s.reason


def test_other_exit_codes_still_retry() -> None:
    s = run("retry", attempts=1, exit_code=5, retry={"non_retryable_exit_codes": [3]})
    assert s.target == "INBOX"


def test_failed_is_permanent_on_the_first_attempt() -> None:
    s = run("failed", attempts=1, error="bad input")
    assert (s.target, s.attempts, s.error_class) == ("FAILED", 1, "permanent")
    assert s.reason == "failed: bad input"
    assert s.next_attempt_at is None


def test_blocked_needs_a_person() -> None:
    s = run("blocked", error="which customer?")
    assert (s.target, s.attempts) == ("BLOCKED", 1)
    assert s.reason == "agent: which customer?"
    assert run("blocked", error=None).reason == "agent: needs a person"


def test_abandoned_requeues_without_counting_the_attempt() -> None:
    s = run("abandoned", attempts=2, abandoned=1, error="no heartbeat within 5s")
    assert (s.target, s.attempts, s.abandoned) == ("INBOX", 1, 2)
    assert s.error_class == "abandoned"
    assert s.next_attempt_at is None
    assert "no heartbeat" in s.reason


def test_abandoning_has_a_limit() -> None:
    limit = ABANDON_LIMIT * 3
    last_requeue = run("abandoned", attempts=1, abandoned=limit - 1)
    assert (last_requeue.target, last_requeue.abandoned) == ("INBOX", limit)
    s = run("abandoned", attempts=1, abandoned=limit, error="no heartbeat within 5s")
    assert (s.target, s.attempts, s.abandoned) == ("FAILED", 0, limit + 1)
    assert s.error_class == "abandoned"
    assert s.reason.startswith(f"abandoned {limit + 1} times")


def test_canceled_while_stopping_requeues_without_counting() -> None:
    s = run("canceled", attempts=2, stopping=True, error="canceled: executor shut down")
    assert (s.target, s.attempts, s.abandoned) == ("INBOX", 1, 0)
    assert s.error_class == "canceled"
    assert s.reason == "requeued: reconciler stopped"


def test_canceled_otherwise_cancels_the_task() -> None:
    s = run("canceled", attempts=1, error="canceled: agent quarantined")
    assert (s.target, s.attempts, s.error_class) == ("CANCELED", 1, "canceled")
    assert s.reason == "canceled: agent quarantined"


@pytest.mark.parametrize("status", ["done", "retry", "failed", "blocked"])
def test_stopping_changes_nothing_for_runs_that_ended_on_their_own(
    status: OutcomeStatus,
) -> None:
    assert run(status, stopping=True) == run(status, stopping=False)


def test_settle_is_deterministic_for_a_seed() -> None:
    assert run("retry", attempts=1) == run("retry", attempts=1)
