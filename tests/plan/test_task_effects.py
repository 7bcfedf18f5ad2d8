"""What an applied change does to tasks, decided on plain data (plan/task_effects.py)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from reconciler.plan.actions import Change, CreateResource, DeleteResource, UpdateResource
from reconciler.plan.task_effects import RunStatusSet, task_effects, task_names
from specs.desired import Desired
from state.records import TaskRow, WorkflowRunRow

NOW = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)


def row(name: str, state: str, run: str | None = None, step: str | None = None) -> TaskRow:
    return TaskRow(name, state, None, "a", 2, 1, None, None, None, NOW, NOW, run, step, None, 3)


def created(name: str, kind: str = "Task") -> CreateResource:
    return CreateResource(kind, name, "sha256:new", f"{name}.yaml")


def updated(name: str) -> UpdateResource:
    return UpdateResource("Task", name, "sha256:new", "sha256:old", f"{name}.yaml", ())


def deleted(name: str, kind: str = "Task") -> DeleteResource:
    return DeleteResource(kind, name, "sha256:old")


# (change, stored state or None, expected (source, target, reset) or "fresh" or None)
CASES: list[tuple[Change, str | None, tuple[str, str, bool] | str | None]] = [
    (created("t"), None, "fresh"),
    (created("t"), "DONE", ("DONE", "INBOX", True)),
    (created("t"), "INBOX", None),
    (updated("t"), "FAILED", ("FAILED", "INBOX", True)),
    (updated("t"), "BLOCKED", ("BLOCKED", "INBOX", True)),
    (updated("t"), "IN_PROGRESS", None),
    (updated("t"), None, None),
    (deleted("t"), "IN_PROGRESS", ("IN_PROGRESS", "CANCELED", False)),
    (deleted("t"), "INBOX", ("INBOX", "CANCELED", False)),
    (deleted("t"), "DONE", None),
    (deleted("t"), None, None),
]


@pytest.mark.parametrize(("change", "stored", "expected"), CASES)
def test_a_task_change(
    change: Change, stored: str | None, expected: tuple[str, str, bool] | str | None
) -> None:
    rows = {"t": row("t", stored)} if stored else {}
    fx = task_effects([change], Desired("c1", {}), rows, {}, "me", "c1", NOW)
    assert fx.fresh_tasks == (("t",) if expected == "fresh" else ())
    if not isinstance(expected, tuple):
        assert fx.task_writes == ()
        return
    source, target, reset = expected
    (write,) = fx.task_writes
    assert (write.name, write.source, write.target, write.commit) == ("t", source, target, "c1")
    assert write.key == f"t:{source}>{target}:c1"
    zero = 0 if reset else None
    assert (write.attempts, write.abandoned, write.rework) == (zero, zero, zero)


def test_deleting_a_workflow_run_cancels_its_unfinished_steps() -> None:
    spec = {"steps": [{"id": "a"}, {"id": "b"}, {"id": "c"}]}
    run = WorkflowRunRow("r", "wf", "sha256:wf", spec, {}, 0, "RUNNING", None, NOW, NOW)
    runs = {"r": run}
    assert task_names([deleted("r", "WorkflowRun")], runs) == ["r.a", "r.b", "r.c"]
    rows = {"r.a": row("r.a", "DONE", "r", "a"), "r.b": row("r.b", "IN_PROGRESS", "r", "b")}
    fx = task_effects([deleted("r", "WorkflowRun")], Desired(None, {}), rows, runs, "me", None, NOW)
    assert [(w.name, w.target, w.key) for w in fx.task_writes] == [
        ("r.b", "CANCELED", f"r.b:IN_PROGRESS>CANCELED:{NOW.isoformat()}")
    ]
    assert fx.run_statuses == (RunStatusSet("r", "CANCELED", None),)
    assert fx.starts == () and fx.restart_events == ()
