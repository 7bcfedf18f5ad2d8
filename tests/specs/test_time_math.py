"""Shifting a time never overflows: out-of-range results clamp to the edges of the calendar."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest

from specs.time_math import EARLIEST, LATEST, add_seconds, after, before

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)

# (seconds, expected)
SHIFTS = [
    (90.0, NOW + timedelta(seconds=90)),
    (-86400.0, NOW - timedelta(days=1)),
    (800000 * 86400.0, NOW + timedelta(days=800000)),
    (-800000 * 86400.0, EARLIEST.replace(tzinfo=UTC)),  # now - approval_ttl of issue 14
    (4e6 * 86400.0, LATEST.replace(tzinfo=UTC)),  # beyond timedelta's own range
    (1e300, LATEST.replace(tzinfo=UTC)),
    (math.inf, LATEST.replace(tzinfo=UTC)),
    (-math.inf, EARLIEST.replace(tzinfo=UTC)),
]


@pytest.mark.parametrize(("seconds", "expected"), SHIFTS, ids=[str(s) for s, _ in SHIFTS])
def test_add_seconds_clamps_instead_of_raising(seconds: float, expected: datetime) -> None:
    shifted = add_seconds(NOW, seconds)
    assert shifted == expected
    assert shifted.tzinfo is UTC
    shifted.astimezone(datetime.now().astimezone().tzinfo)  # a clamped time still converts


def test_naive_times_stay_naive() -> None:
    assert add_seconds(datetime(2026, 1, 1), 1e300) == LATEST


def test_durations_as_written() -> None:
    assert after(NOW, "10m") == NOW + timedelta(minutes=10)
    assert before(NOW, "24h") == NOW - timedelta(hours=24)
    assert before(NOW, "800000d") == EARLIEST.replace(tzinfo=UTC)


def test_nan_is_refused() -> None:
    with pytest.raises(ValueError, match="NaN"):
        add_seconds(NOW, math.nan)
