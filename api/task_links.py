"""What a task page links to and why it stopped: dependencies, dependents, who denied it.

Pure reads over the readers of one request, like `api.work` (which calls these). A declared
task's links come from the applied specs (`depends_on` names tasks); a workflow step's from
its run's pinned workflow (`depends_on` names steps of the same run).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import yaml

from api.telegram.awaiting import read_governance, task_dispatch_risk
from api.views import Readers
from reconciler.commands import denials
from reconciler.commands.denials import DENIED_PREFIX
from reconciler.tasks.workflow_runs import step_task_name
from state.records import TaskRow


@dataclass(frozen=True, slots=True)
class TaskLink:
    name: str
    state: str  # "-" when the task has no row yet


@dataclass(frozen=True, slots=True)
class Links:
    depends_on: list[TaskLink]
    dependents: list[TaskLink]


def _with_states(r: Readers, names: list[str]) -> list[TaskLink]:
    states = r.state.task_states_of(names)
    return [TaskLink(n, states.get(n, "-")) for n in names]


def task_links(r: Readers, name: str, row: TaskRow | None, spec: dict[str, Any]) -> Links:
    """Tasks this one waits for and tasks that wait for it, with their states."""
    if row is not None and row.workflow_run and row.step:
        found = r.state.workflow_runs([row.workflow_run])
        steps: list[dict[str, Any]] = found[0].workflow_spec.get("steps", []) if found else []
        run = row.workflow_run
        needs = [step_task_name(run, str(d)) for d in spec.get("depends_on", [])]
        waiting = [
            step_task_name(run, str(s["id"]))
            for s in steps
            if row.step in (s.get("depends_on") or [])
        ]
        return Links(_with_states(r, needs), _with_states(r, waiting))
    needs = [str(d) for d in spec.get("depends_on", [])]
    return Links(_with_states(r, needs), _with_states(r, r.dash.dependents(name)))


def denied_by(r: Readers, row: TaskRow | None, digest: str | None, now: datetime) -> str | None:
    """Who or what denied a task the engine failed as denied (reconciler/commands/denials.py):
    the approvers whose deny of its current content counts, else the policy rule."""
    if row is None or row.state != "FAILED" or not (row.reason or "").startswith(DENIED_PREFIX):
        return None

    def policy() -> tuple[str, str] | None:
        gov = read_governance(r.dash)
        return task_dispatch_risk(r.state, gov, row, now) if gov is not None else None

    return denials.denied_by(r.dash, f"Task/{row.name}", digest, policy)


def spec_yaml(spec: dict[str, Any]) -> str:
    """The spec as YAML in its own key order, without the nulls of unset optional fields."""
    return yaml.safe_dump(_without_nulls(spec), sort_keys=False, allow_unicode=True).rstrip()


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value
