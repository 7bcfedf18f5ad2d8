"""Every read command's answer as JSON, computed from one pair of readers: by the CLI itself
when the state file is free, or by the process that holds it (`mc apply`, `mc serve`,
`mc bot`) over its local socket (commands/holder.py). One function per view, so both ways
give the same answer; cli/ renders only these shapes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from reconciler.commands import approvals as approval_ops
from reconciler.commands import work as work_ops
from reconciler.commands import workflow_runs as wf_ops
from reconciler.commands.status import event_to_json, status_to_json, status_with
from reconciler.commands.task_views import TaskQuery, task_detail, task_list, why_json
from reconciler.repo.source import MissionRepo
from specs.errors import MCError
from specs.models import KINDS
from specs.money import money_json
from state.dashboard import DashboardReader
from state.store import StateReader

Params = Mapping[str, str]


@dataclass(frozen=True)
class Readers:
    """What a view reads: the state (two read interfaces over one cursor), the repo, now."""

    state: StateReader
    dash: DashboardReader
    repo: MissionRepo
    now: datetime
    trust_anew: bool = False  # the holder's own setting, for plans it makes (`mc serve`)
    driven: bool = False  # a process (`mc apply`, `mc serve`, `mc bot`) drives the work


View = Callable[[Readers, Params], Any]


def answer(view: str, params: Params, r: Readers) -> Any:
    """The JSON body of one view; MCError for an unknown view or a bad parameter."""
    found = VIEWS.get(view)
    if found is None:
        raise MCError(f"unknown view {view!r}")
    return found(r, params)


def _int(params: Params, key: str, default: int) -> int:
    try:
        return int(params.get(key, default))
    except ValueError:
        raise MCError(f"{key} must be a whole number") from None


def _status(r: Readers, p: Params) -> Any:
    return status_to_json(status_with(r.state, r.repo))


def _events(r: Readers, p: Params) -> Any:
    since = datetime.fromisoformat(p["since"]) if p.get("since") else None
    found = r.state.events(since=since, limit=_int(p, "limit", 100))
    return [event_to_json(e) for e in found]


def _plan(r: Readers, p: Params) -> Any:
    from reconciler.plan.codec import plan_to_json
    from reconciler.plan.pipeline import plan_commit

    desired = r.repo.desired(None if p.get("worktree") else p.get("rev", "HEAD"))
    report = plan_commit(r.state, r.repo, desired, r.now, r.trust_anew or bool(p.get("trust_anew")))
    return {**plan_to_json(report.plan), "uncommitted": list(report.desired.dirty_paths)}


def _tasks(r: Readers, p: Params) -> Any:
    q = TaskQuery(p.get("state"), p.get("agent"), p.get("label"), _int(p, "limit", 500))
    return task_list(r.state, r.dash, q, r.now, r.driven)


def _task(r: Readers, p: Params) -> Any:
    return task_detail(r.state, r.dash, p.get("name", ""), r.now, r.driven)


def _runs(r: Readers, p: Params) -> Any:
    task = p.get("task") or None
    found = r.state.runs(task=task, limit=_int(p, "limit", 50))
    if task is not None and not found:
        _known_task(r, task)
    return work_ops.runs_json(r.state, found)


def _known_task(r: Readers, name: str) -> None:
    """MCError, as `mc task` gives, for a task the state has never heard of."""
    if not r.state.task_states_of([name]):
        raise MCError(f"no task {name!r} (see `mc tasks`)")


def _run(r: Readers, p: Params) -> Any:
    return work_ops.run_json(work_ops.find_run(r.state, p.get("target", "")))


def _workflow_runs(r: Readers, p: Params) -> Any:
    return [
        {
            "name": x.name,
            "workflow": x.workflow,
            "status": x.status,
            "inputs": x.inputs,
            "outputs": x.outputs,
            "workflow_digest": x.workflow_digest,
            "created_at": x.created_at.isoformat(),
        }
        for x in r.state.workflow_runs()
    ]


def _agents(r: Readers, p: Params) -> Any:
    return [
        {
            **a.__dict__,
            "spent_today": money_json(a.spent_today),
            "daily_cap": money_json(a.daily_cap),
        }
        for a in work_ops.agents(r.state, r.now.date())
    ]


def _approvals(r: Readers, p: Params) -> Any:
    report = approval_ops.approvals(r.state)
    pending = [
        {
            "target": x.key,
            "action": x.action,
            "digest": x.digest,
            "risk": x.risk,
            "reason": x.reason,
            "since": x.since.isoformat(),
        }
        for x in report.pending
    ]
    decided = [
        {
            "id": d.id,
            "target": d.target,
            "digest": d.digest,
            "approver": d.approver,
            "decision": d.decision,
            "channel": d.channel,
            "status": d.status,
            "reason": d.reason,
            "evidence": d.evidence,
            "at": d.at.isoformat(),
        }
        for d in report.decided
    ]
    return {"pending": pending, "tasks": report.waiting_tasks, "decided": decided}


def _workflows(r: Readers, p: Params) -> Any:
    return [{"name": n, "spec": s, "runs": c} for n, s, c in wf_ops.workflows(r.state)]


def _run_status(r: Readers, p: Params) -> Any:
    status = wf_ops.run_status(r.state, p.get("name", ""))
    run = status.run
    return {
        "name": run.name,
        "workflow": run.workflow,
        "status": run.status,
        "inputs": run.inputs,
        "outputs": run.outputs,
        "workflow_digest": run.workflow_digest,
        "steps": [s.__dict__ for s in status.steps],
    }


def _memory(r: Readers, p: Params) -> Any:
    return work_ops.memory(r.state, p.get("agent", ""))


def _drops(r: Readers, p: Params) -> Any:
    _known_task(r, p.get("task", ""))
    return [
        {
            "run_id": d.run_id,
            "path": d.path,
            "sha256": d.sha256,
            "size": d.size,
            "media_type": d.media_type,
            "file": str(f),
        }
        for d, f in work_ops.drops(r.state, r.repo, p.get("task", ""))
    ]


KIND_OF = {k.lower(): k for k in KINDS}


def explain_target(target: str) -> str:
    """`Kind/name` as `mc explain` takes it: the kind in any case (`task/x`), and a bare name
    meaning a task (`x` is `Task/x`)."""
    kind, sep, name = target.partition("/")
    if not sep:
        return f"Task/{target}"
    return f"{KIND_OF.get(kind.lower(), kind)}/{name}"


def _explain(r: Readers, p: Params) -> Any:
    given = p.get("target", "")
    target = explain_target(given)
    try:
        found = approval_ops.explain(r.state, r.dash, r.repo, target, r.now, r.driven)
    except MCError as exc:
        if "/" in given:
            raise
        raise MCError(
            f"{exc}; a bare name means a task: name another resource as Kind/NAME,"
            f" e.g. Agent/{given}"
        ) from exc
    action = None
    if found.action is not None:
        a = found.action
        action = {
            "change": a.change.__class__.__name__.replace("Resource", "").lower(),
            "risk": a.decision.risk,
            "rule": a.decision.rule,
            "status": a.status,
            "approvals_needed": a.decision.approvals_needed,
            "approved_by": list(a.approved_by),
            "note": a.note or a.decision.note,
        }
    dispatch = (
        {"risk": found.dispatch[0], "rule": found.dispatch[1], "gate": found.gate}
        if found.dispatch
        else None
    )
    return {
        "target": found.target,
        "action": action,
        "dispatch": dispatch,
        "why": why_json(found.why) if found.why else None,
    }


VIEWS: dict[str, View] = {
    "status": _status,
    "events": _events,
    "plan": _plan,
    "tasks": _tasks,
    "task": _task,
    "runs": _runs,
    "run": _run,
    "workflow-runs": _workflow_runs,
    "agents": _agents,
    "approvals": _approvals,
    "workflows": _workflows,
    "run-status": _run_status,
    "memory": _memory,
    "drops": _drops,
    "explain": _explain,
}
