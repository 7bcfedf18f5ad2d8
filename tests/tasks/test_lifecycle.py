"""The task state machine: every (state, target) pair checked against the documented table."""

from __future__ import annotations

import itertools

import pytest

from reconciler.tasks.lifecycle import (
    ACTIVE,
    TERMINAL,
    TRANSITIONS,
    IllegalTransition,
    TaskState,
    can_transition,
    transition,
)

S = TaskState

# Written out independently of reconciler.tasks.lifecycle, from DESIGN §5 and the table's comments:
# the test fails if an edge is added or removed without updating this list.
EXPECTED_EDGES: frozenset[tuple[str, str]] = frozenset(
    {
        ("INBOX", "ASSIGNED"),
        ("INBOX", "NEEDS_APPROVAL"),
        ("INBOX", "BLOCKED"),
        ("INBOX", "CANCELED"),
        ("INBOX", "FAILED"),
        ("INBOX", "DONE"),  # a workflow step whose `when` is false is skipped
        ("NEEDS_APPROVAL", "INBOX"),
        ("NEEDS_APPROVAL", "FAILED"),
        ("NEEDS_APPROVAL", "CANCELED"),
        ("ASSIGNED", "IN_PROGRESS"),
        ("ASSIGNED", "INBOX"),
        ("ASSIGNED", "FAILED"),
        ("ASSIGNED", "BLOCKED"),
        ("ASSIGNED", "CANCELED"),
        ("IN_PROGRESS", "DONE"),
        ("IN_PROGRESS", "REVIEW"),
        ("IN_PROGRESS", "INBOX"),
        ("IN_PROGRESS", "FAILED"),
        ("IN_PROGRESS", "BLOCKED"),
        ("IN_PROGRESS", "CANCELED"),
        ("REVIEW", "DONE"),
        ("REVIEW", "INBOX"),
        ("REVIEW", "FAILED"),
        ("REVIEW", "CANCELED"),
        ("BLOCKED", "INBOX"),
        ("BLOCKED", "FAILED"),
        ("BLOCKED", "CANCELED"),
        ("FAILED", "INBOX"),
        ("FAILED", "CANCELED"),
        ("CANCELED", "INBOX"),
        ("DONE", "INBOX"),  # only a workflow verifier sends a step back for rework
    }
)

ALL_PAIRS = list(itertools.product(list(TaskState), repeat=2))
ALLOWED = [(a, b) for a, b in ALL_PAIRS if (a.value, b.value) in EXPECTED_EDGES]
ILLEGAL = [(a, b) for a, b in ALL_PAIRS if (a.value, b.value) not in EXPECTED_EDGES]


def test_the_pairs_cover_every_state_and_split_as_documented() -> None:
    assert len(TaskState) == 9
    assert len(ALL_PAIRS) == 81
    assert len(ALLOWED) == 31
    assert len(ILLEGAL) == 50


def test_the_table_is_exactly_the_documented_edges() -> None:
    actual = {(a.value, b.value) for a, targets in TRANSITIONS.items() for b in targets}
    assert actual == EXPECTED_EDGES
    assert set(TRANSITIONS) == set(TaskState), "every state has a row"


@pytest.mark.parametrize(("source", "target"), ALLOWED, ids=lambda s: s.value)
def test_an_allowed_move_becomes_a_transition_with_an_idempotency_key(
    source: TaskState, target: TaskState
) -> None:
    t = transition("draft", source.value, target.value, "reconciler", "why", "r-1")
    assert (t.task, t.source, t.target) == ("draft", source, target)
    assert (t.actor, t.reason) == ("reconciler", "why")
    assert t.key == f"draft:{source.value}>{target.value}:r-1"
    assert can_transition(source.value, target.value)


@pytest.mark.parametrize(("source", "target"), ILLEGAL, ids=lambda s: s.value)
def test_an_illegal_move_is_refused_naming_both_states(
    source: TaskState, target: TaskState
) -> None:
    with pytest.raises(IllegalTransition) as caught:
        transition("draft", source.value, target.value, "reconciler", "why", "r-1")
    message = str(caught.value)
    assert f"from {source.value} to {target.value}" in message
    assert "task draft" in message
    assert (caught.value.source, caught.value.target) == (source.value, target.value)
    assert not can_transition(source.value, target.value)


def test_the_refusal_lists_what_is_allowed_instead() -> None:
    with pytest.raises(IllegalTransition, match=r"allowed: CANCELED, INBOX\)"):
        transition("t", "FAILED", "DONE", "reconciler", "", "x")
    with pytest.raises(IllegalTransition, match=r"allowed: INBOX\)"):
        transition("t", "DONE", "FAILED", "reconciler", "", "x")


def test_the_key_tells_apart_causes_and_repeats_for_the_same_cause() -> None:
    first = transition("t", "INBOX", "ASSIGNED", "reconciler", "dispatched", "r-1")
    again = transition("t", "INBOX", "ASSIGNED", "reconciler", "dispatched again", "r-1")
    other = transition("t", "INBOX", "ASSIGNED", "reconciler", "dispatched", "r-2")
    assert first.key == again.key
    assert first.key != other.key


def test_unknown_states_are_not_silently_accepted() -> None:
    with pytest.raises(ValueError):
        transition("t", "INBOX", "RUNNING", "reconciler", "", "x")


def test_done_only_reopens_for_rework_and_terminal_states_are_not_active() -> None:
    assert TRANSITIONS[S.DONE] == frozenset({S.INBOX})
    assert frozenset({S.DONE, S.FAILED, S.CANCELED}) == TERMINAL
    assert not TERMINAL & ACTIVE
