"""Pure: what a reviewer's request for changes does to a task in REVIEW — back to its agent
with the reviewer's words as `feedback` (a rework round), or failed once `max_rework` rounds
are spent. engine/enact.py asks and writes the answer."""

from __future__ import annotations

from dataclasses import dataclass

from reconciler.tasks.lifecycle import TaskState

DEFAULT_MAX_REWORK = 2  # a Task without `max_rework:` (a workflow step has its own default)


@dataclass(frozen=True, slots=True)
class ReworkVerdict:
    target: TaskState  # INBOX (another round) or FAILED (rounds spent)
    reason: str
    round: int  # the round this request opens (rework + 1), also when it is refused
    limit: int


def rework_verdict(max_rework: int | None, rework: int, feedback: str, by: str) -> ReworkVerdict:
    """`rework`: rounds already done. A request beyond the limit fails the task instead."""
    limit = DEFAULT_MAX_REWORK if max_rework is None else max_rework
    round_ = rework + 1
    words = feedback.strip() or "(no feedback given)"
    if round_ > limit:
        reason = f"rework limit ({limit}) reached; {by} asked for changes again: {words}"
        return ReworkVerdict(TaskState.FAILED, reason, round_, limit)
    reason = f"changes requested by {by} (rework {round_}/{limit}): {words}"
    return ReworkVerdict(TaskState.INBOX, reason, round_, limit)
