"""What waits for a person, as one list: `mc approvals`, the dashboard and the bot's /pending.

Two kinds of things wait for an approval: plan actions the latest plan held back (the
`pending` table) and tasks in NEEDS_APPROVAL (gated before dispatch) or REVIEW (gated before
DONE). Every surface reads them through `pending_approvals`, so their lists and counts agree.
"""

from __future__ import annotations

from dataclasses import dataclass

from reconciler.tasks.lifecycle import AWAITING_APPROVAL
from state.records import PendingAction, TaskRow
from state.store import StateReader

ALL = 1 << 62  # "no limit" for `tasks_in`, which always takes one


@dataclass(frozen=True, slots=True)
class PendingApprovals:
    """Plan actions held for approval, and tasks waiting for one (most recently changed first).

    `tasks` holds at most the `limit` asked for; `tasks_total` counts them all, and `count`
    is everything waiting (actions + tasks_total): what the overview and live counts show."""

    actions: list[PendingAction]
    tasks: list[TaskRow]
    tasks_total: int
    count: int


def pending_approvals(reader: StateReader, limit: int | None = None) -> PendingApprovals:
    """Everything waiting for an approval; `limit` caps the task rows read (None: all)."""
    states = sorted(AWAITING_APPROVAL)
    counts = reader.task_counts()
    total = sum(counts.get(s, 0) for s in states)
    tasks = reader.tasks_in(states, limit=ALL if limit is None else limit) if total else []
    actions = reader.pending()
    return PendingApprovals(actions, tasks, total, len(actions) + total)
