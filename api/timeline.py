"""Geometry of a task's run timeline (pure): its attempts as bars on one time axis.

The task page draws it as SVG; each bar runs from the attempt's start to its end (or to now
while it runs), coloured by outcome, and a marker shows when the next retry is due. Like
`api.svg`, no text is placed here: the template writes labels, and Jinja2 escapes them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from state.records import RunRow

LABEL_W, AXIS_W, ROW_H, BAR_H, PAD = 96, 640, 26, 16, 14
MIN_BAR_W = 3  # a run of a few milliseconds still shows as a bar

# Bar fill by outcome: the hues of the page's badges.
OUTCOME_FILL = {
    "done": "#16a34a",
    "running": "#2563eb",
    "failed": "#dc2626",
    "retry": "#f59e0b",  # a temporary failure: tried again later
    "blocked": "#d97706",
    "abandoned": "#6b7280",
    "canceled": "#9ca3af",
}


@dataclass(frozen=True, slots=True)
class TimelineBar:
    run_id: str
    attempt: int
    start: datetime
    end: datetime | None  # None while it runs
    outcome: str  # done | failed | blocked | running | abandoned | canceled | the agent's word
    duration_s: float
    x: int
    y: int
    w: int


@dataclass(frozen=True, slots=True)
class Timeline:
    bars: list[TimelineBar]  # oldest attempt first, one row each
    start: datetime
    end: datetime
    next_retry_at: datetime | None
    retry_x: int | None  # where the next-retry marker sits, when one is due
    width: int
    height: int
    label_w: int = LABEL_W
    axis_w: int = AXIS_W
    bar_h: int = BAR_H


def outcome(run: RunRow) -> str:
    """How an attempt ended, in one word: the agent's status, else what the runtime saw."""
    if run.ended_at is None:
        return "running"
    if run.status:
        return run.status
    return run.state.lower() if run.state else "ended"


def build_timeline(
    runs: Sequence[RunRow], next_retry_at: datetime | None, now: datetime
) -> Timeline | None:
    """Bars for `runs` (any order) on an axis from the first start to the last end, now
    (while one runs) or the next retry, whichever is latest; None without runs."""
    if not runs:
        return None
    ordered = sorted(runs, key=lambda r: (r.started_at, r.attempt))
    start = ordered[0].started_at
    ends = [r.ended_at or now for r in ordered]
    end = max([*ends, *([next_retry_at] if next_retry_at else [])])
    span = max((end - start).total_seconds(), 1e-3)

    def x_of(when: datetime) -> int:
        return LABEL_W + round(AXIS_W * (when - start).total_seconds() / span)

    bars = []
    for i, (run, stop) in enumerate(zip(ordered, ends, strict=True)):
        x = x_of(run.started_at)
        bars.append(
            TimelineBar(
                run.id,
                run.attempt,
                run.started_at,
                run.ended_at,
                outcome(run),
                max((stop - run.started_at).total_seconds(), 0.0),
                x,
                PAD + i * ROW_H,
                max(x_of(stop) - x, MIN_BAR_W),
            )
        )
    retry_x = x_of(next_retry_at) if next_retry_at and next_retry_at >= start else None
    height = PAD * 2 + len(bars) * ROW_H + 14  # room for the axis labels below
    return Timeline(bars, start, end, next_retry_at, retry_x, LABEL_W + AXIS_W + 24, height)
