"""Time arithmetic that cannot overflow: every `now ± duration` in mc goes through here.

A duration written in a mission file is bounded by validation (specs/fields.py), but a value
that reaches arithmetic anyway (an applied spec from an older release, a CLI flag, a long
backoff) must not raise `OverflowError` inside the reconcile loop: the result is clamped to
the representable range instead, which reads as "never" or "since forever".
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from specs.fields import duration_seconds

# Two days inside datetime's range, so converting a clamped moment to any time zone (or
# adding a heartbeat to it) still fits.
LATEST = datetime.max - timedelta(days=2)
EARLIEST = datetime.min + timedelta(days=2)


def add_seconds(moment: datetime, seconds: float) -> datetime:
    """`moment` shifted by `seconds` (negative: earlier), clamped to EARLIEST..LATEST.

    Keeps `moment`'s tzinfo. Raises ValueError for NaN, which names no moment at all.
    """
    if math.isnan(seconds):
        raise ValueError("cannot shift a time by NaN seconds")
    try:
        shifted = moment + timedelta(seconds=seconds)
    except OverflowError:  # timedelta itself, or the sum, is out of range
        shifted = _edge(moment, seconds > 0)
    naive = shifted.replace(tzinfo=None)
    if naive > LATEST or naive < EARLIEST:
        return _edge(moment, naive > LATEST)
    return shifted


def after(moment: datetime, duration: str) -> datetime:
    """`moment` plus a duration string such as '10m' (see add_seconds)."""
    return add_seconds(moment, duration_seconds(duration))


def before(moment: datetime, duration: str) -> datetime:
    """`moment` minus a duration string such as '24h' (see add_seconds)."""
    return add_seconds(moment, -duration_seconds(duration))


def _edge(moment: datetime, late: bool) -> datetime:
    return (LATEST if late else EARLIEST).replace(tzinfo=moment.tzinfo)
