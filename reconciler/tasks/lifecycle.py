"""The task state machine: one transition table and the named groups of states; every module
that moves a task (plan/task_effects, engine/enact, engine/recovery, commands) calls it."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from specs.errors import MCError
from state.write_batch import TaskWrite


class TaskState(StrEnum):
    INBOX = "INBOX"
    NEEDS_APPROVAL = "NEEDS_APPROVAL"
    ASSIGNED = "ASSIGNED"
    IN_PROGRESS = "IN_PROGRESS"
    REVIEW = "REVIEW"
    DONE = "DONE"
    BLOCKED = "BLOCKED"
    FAILED = "FAILED"
    CANCELED = "CANCELED"


S = TaskState
# from -> the states it may move to. Why each edge exists is the reason a caller passes.
TRANSITIONS: dict[TaskState, frozenset[TaskState]] = {
    # ready work is dispatched, waits for an approval, is blocked (budget, dependency) or
    # dropped; a workflow step whose `when` is false is done without running (skipped)
    S.INBOX: frozenset({S.ASSIGNED, S.NEEDS_APPROVAL, S.BLOCKED, S.CANCELED, S.FAILED, S.DONE}),
    # approved -> back to the queue; denied -> failed; deleted -> canceled
    S.NEEDS_APPROVAL: frozenset({S.INBOX, S.FAILED, S.CANCELED}),
    # the run row exists; the process starts, or never could (back to INBOX / FAILED)
    S.ASSIGNED: frozenset({S.IN_PROGRESS, S.INBOX, S.FAILED, S.BLOCKED, S.CANCELED}),
    # the agent finished: success (maybe under review), retry later, give up, or needs a person
    S.IN_PROGRESS: frozenset({S.DONE, S.REVIEW, S.INBOX, S.FAILED, S.BLOCKED, S.CANCELED}),
    # a reviewer approves (DONE), rejects for rework (INBOX) or the task is dropped
    S.REVIEW: frozenset({S.DONE, S.INBOX, S.FAILED, S.CANCELED}),
    # the blocker cleared (budget reset, dependency retried, person unblocked it)
    S.BLOCKED: frozenset({S.INBOX, S.FAILED, S.CANCELED}),
    # a person retries (`mc retry`, or a changed spec in git)
    S.FAILED: frozenset({S.INBOX, S.CANCELED}),
    # the task was declared again in git after being deleted
    S.CANCELED: frozenset({S.INBOX}),
    # finished work is never redone by the reconciler on its own; the one way back is a
    # workflow verifier sending its step back for rework (bounded by max_rework)
    S.DONE: frozenset({S.INBOX}),
}
TERMINAL = frozenset({S.DONE, S.FAILED, S.CANCELED})  # nothing moves them but git or a person
SETTLED = frozenset({S.DONE, S.FAILED, S.CANCELED, S.BLOCKED, S.NEEDS_APPROVAL, S.REVIEW})
ACTIVE = frozenset({S.ASSIGNED, S.IN_PROGRESS})
ATTENTION = frozenset({S.FAILED, S.BLOCKED, S.NEEDS_APPROVAL, S.REVIEW})  # wait for a person
STARTED = frozenset({S.ASSIGNED, S.IN_PROGRESS, S.REVIEW})  # deleting one stops an agent's work
RETRYABLE = frozenset({S.FAILED, S.BLOCKED})  # stuck: `mc retry` or a changed spec requeues it
AWAITING_APPROVAL = frozenset({S.NEEDS_APPROVAL, S.REVIEW})  # a person's approval moves it on
# the scheduler looks at these: each may move on its own (dispatch, approval, unblock)
WAITING = frozenset({S.INBOX, S.BLOCKED, S.NEEDS_APPROVAL, S.REVIEW})
GIVEN_UP = frozenset({S.FAILED, S.CANCELED})  # a dependency here blocks its dependents
# what a run's outcome may carry into the task (its output, outputs)
PRODUCED = frozenset({S.DONE, S.REVIEW})


class IllegalTransition(MCError):
    def __init__(self, task: str, source: str, target: str) -> None:
        self.task, self.source, self.target = task, source, target
        allowed = ", ".join(sorted(TRANSITIONS[TaskState(source)])) or "nothing (final)"
        super().__init__(f"task {task}: cannot go from {source} to {target} (allowed: {allowed})")


@dataclass(frozen=True, slots=True)
class Transition:
    """One checked state change, ready to be written with its event."""

    task: str
    source: TaskState
    target: TaskState
    actor: str
    reason: str
    key: str  # idempotency key: the same key applied twice changes nothing the second time

    def write(self, **fields: Any) -> TaskWrite:
        """The state write for this move, with the task fields it sets (`attempts`, …)."""
        return TaskWrite(
            self.task, self.source, self.target, self.key, self.actor, self.reason, **fields
        )


def transition(
    task: str, source: str, target: str, actor: str, reason: str, cause: str
) -> Transition:
    """Check one move against the table; `cause` (run id, commit, …) makes the key unique."""
    src, dst = TaskState(source), TaskState(target)
    if dst not in TRANSITIONS[src]:
        raise IllegalTransition(task, source, target)
    return Transition(task, src, dst, actor, reason, f"{task}:{src}>{dst}:{cause}")


def can_transition(source: str, target: str) -> bool:
    return TaskState(target) in TRANSITIONS[TaskState(source)]
