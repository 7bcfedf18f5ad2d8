"""What waits for a person, read from the state: plan actions pending approval and tasks gated
before dispatch or in review, each with its digest, risk and the votes it has so far.

The bot's sync loop and its decision handler call these on a reader cursor of the live state.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from reconciler.commands.pending import pending_approvals
from reconciler.engine.approval_gates import dispatch_risk
from reconciler.engine.mirror import RunRec, TaskRec, World, task_record
from reconciler.governance.approvals import GivenApproval, accepted, tally
from reconciler.plan.diff import diff_specs
from reconciler.repo.source import MissionRepo
from specs.errors import MCError
from specs.fields import duration_seconds
from specs.loader import parse_file
from specs.models import AgentSpec, MissionSpec, TaskSpec, WorkflowSpec
from specs.time_math import add_seconds
from state.dashboard import DashboardReader
from state.records import TaskRow
from state.store import StateReader

GATED_STATES = ("NEEDS_APPROVAL", "REVIEW")
MAX_TASKS = 50  # gated tasks offered per sync; more wait for the next ones to be decided
KIND_DIRS = {"Agent": "agents", "Task": "tasks", "Workflow": "workflows", "WorkflowRun": "runs"}


@dataclass(frozen=True)
class Governance:
    """Who may decide, per the applied mission."""

    mission: str
    spec: MissionSpec
    by_telegram_id: Mapping[int, str]
    approvers: frozenset[str]
    ttl: timedelta

    def approver_for(self, user_id: int) -> str | None:
        return self.by_telegram_id.get(user_id)


def read_governance(dash: DashboardReader) -> Governance | None:
    found = dash.resources_of_kind(["Mission"])
    if not found:
        return None
    spec = MissionSpec.model_validate(found[0].spec)
    ids = {tid: a.name for a in spec.approvers for tid in a.telegram_ids}
    ttl = timedelta(seconds=duration_seconds(spec.policy.approval_ttl))
    return Governance(found[0].name, spec, ids, frozenset(a.name for a in spec.approvers), ttl)


@dataclass(frozen=True)
class Awaiting:
    """One target waiting for approval of exactly this digest."""

    target: str  # Kind/name
    digest: str
    risk: str
    action: str  # create | update | delete | replace (plan) · dispatch | review (tasks)
    needed: int
    approved_by: tuple[str, ...]
    denied_by: tuple[str, ...]
    since: datetime
    commit: str | None
    note: str

    @property
    def key(self) -> tuple[str, str]:
        return (self.target, self.digest)

    @property
    def still_needed(self) -> int:
        return max(self.needed - len(self.approved_by), 0)


def read_awaiting(
    reader: StateReader, gov: Governance, now: datetime, only: str | None = None
) -> dict[tuple[str, str], Awaiting]:
    """Everything an approver could decide now (or only `only`, a Kind/name)."""
    oldest = add_seconds(now, -gov.ttl.total_seconds())
    given = accepted(reader.approvals(status="accepted"))
    out: dict[tuple[str, str], Awaiting] = {}
    found = pending_approvals(reader, MAX_TASKS)  # the list `mc approvals` and the dashboard show
    for p in found.actions:
        if p.risk not in ("HIGH", "RED") or p.digest is None or (only and p.key != only):
            continue
        votes = tally(given.get(p.key, ()), p.key, p.digest, gov.approvers, oldest)
        item = Awaiting(
            p.key,
            p.digest,
            p.risk,
            p.action,
            2 if p.risk == "RED" else 1,
            tuple(sorted(votes.approved_by)),
            tuple(sorted(votes.denied_by)),
            p.since,
            p.commit,
            p.reason,
        )
        out[item.key] = item
    if only is not None and not only.startswith("Task/"):
        return out
    rows = reader.tasks([only[5:]]) if only else found.tasks
    recs = _task_recs([r for r in rows if r.state in GATED_STATES], reader)
    world = _gate_world(gov, now)
    for rec in recs:
        gated = _task_awaiting(rec, world, given, gov, oldest)
        if gated is not None:
            out[gated.key] = gated
    return out


def _gate_world(gov: Governance, now: datetime) -> World:
    """Just enough of the engine's world to judge dispatch gates: the applied mission."""
    return World(gov.mission, gov.spec, None, {}, {}, now.date(), {}, {})


def task_dispatch_risk(
    reader: StateReader, gov: Governance, row: TaskRow, now: datetime
) -> tuple[str, str] | None:
    """(risk, rule) the dispatch gate judges this task by, as the scheduler does: what a
    denied task was denied by when no approver denied it. None for a task without a record."""
    recs = _task_recs([row], reader)
    return dispatch_risk(_gate_world(gov, now), recs[0]) if recs else None


def _task_awaiting(
    rec: TaskRec,
    world: World,
    given: Mapping[str, tuple[GivenApproval, ...]],
    gov: Governance,
    oldest: datetime,
) -> Awaiting | None:
    risk, rule = dispatch_risk(world, rec)
    if risk == "DENY":
        return None
    target = f"Task/{rec.name}"
    # as the review gate does: git commit times are whole seconds, so compare at that resolution
    since = rec.review_since.replace(microsecond=0) if rec.review_since else None
    votes = tally(given.get(target, ()), target, rec.digest, gov.approvers, oldest, since)
    review = rec.state == "REVIEW"
    return Awaiting(
        target,
        rec.digest,
        risk,
        "review" if review else "dispatch",
        2 if risk == "RED" else 1,
        tuple(sorted(votes.approved_by)),
        tuple(sorted(votes.denied_by)),
        rec.review_since or rec.created_at,
        None,
        rec.reason or rule,
    )


def _task_recs(rows: Sequence[TaskRow], reader: StateReader) -> list[TaskRec]:
    """Just enough of the engine's task records to judge these tasks' gates."""
    if not rows:
        return []
    specs = reader.resources_by_key([f"Task/{r.name}" for r in rows])
    run_names = sorted({r.workflow_run for r in rows if r.workflow_run})
    runs = {w.name: w for w in reader.workflow_runs(run_names)} if run_names else {}
    run_res_all = reader.resources_by_key([f"WorkflowRun/{n}" for n in run_names])
    recs: list[TaskRec] = []
    for row in rows:
        step = None
        if row.workflow_run in runs and row.step:
            w = runs[row.workflow_run]
            run = RunRec(
                w.name, w.workflow, WorkflowSpec.model_validate(w.workflow_spec), w.inputs, w.status
            )
            found = next((x for x in run.spec.steps if x.id == row.step), None)
            step = (run, found) if found else None
        run_res = run_res_all.get(f"WorkflowRun/{row.workflow_run}")
        rec = task_record(row, specs.get(f"Task/{row.name}"), step, run_res)
        if rec is not None:
            recs.append(rec)
    return recs


# --- what will happen, for the request message ---------------------------------------------------


@dataclass(frozen=True)
class Description:
    lines: tuple[str, ...]
    cost: str | None


def describe(item: Awaiting, reader: StateReader, repo: MissionRepo) -> Description:
    """The change (field diff) or the task (title, agent, prompt), and an estimated cost."""
    kind, name = item.target.split("/", 1)
    if item.action in ("dispatch", "review"):
        return _describe_task(item, reader)
    applied = reader.resource(kind, name)
    old = applied.spec if applied is not None else {}
    if item.action == "delete":
        return Description((f"removes {item.target} (applied as {item.digest[:19]}…)",), None)
    hint = applied.path if applied is not None else None
    new = committed_spec(repo, item.commit, kind, name, hint)
    if new is None:
        return Description(("(the change is shown by `mc plan`)",), None)
    lines = [_change_line(path, a, b) for path, a, b in _changes(old, new)]
    if len(lines) > 12:
        lines = [*lines[:12], f"… and {len(lines) - 12} more fields"]
    return Description(tuple(lines), _spec_cost(kind, new))


def _changes(old: dict[str, Any], new: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """Field changes; a list of equal length changed in place shows only the items that moved."""
    out: list[tuple[str, Any, Any]] = []
    for c in diff_specs(old, new):
        if isinstance(c.old, list) and isinstance(c.new, list) and len(c.old) == len(c.new):
            out += [
                (f"{c.path}[{i}]", a, b)
                for i, (a, b) in enumerate(zip(c.old, c.new, strict=True))
                if a != b
            ]
        else:
            out.append((c.path, c.old, c.new))
    return out


def _change_line(path: str, old: Any, new: Any) -> str:
    if old is None:
        return f"+ {path}: {_short(new)}"
    if new is None:
        return f"- {path}: {_short(old)}"
    return f"~ {path}: {_short(old)} → {_short(new)}"


def _describe_task(item: Awaiting, reader: StateReader) -> Description:
    name = item.target[5:]
    recs = _task_recs(reader.tasks([name]), reader)
    if not recs:
        return Description((f"{item.action} {item.target}",), None)
    spec = recs[0].spec
    who = spec.agent or f"any agent with {', '.join(spec.requires)}"
    lines = [f"title: {spec.title}", f"agent: {who}"]
    if spec.prompt:
        lines.append(f"prompt: {_clip(' '.join(spec.prompt.split()), 200)}")
    if item.action == "review":
        lines.append(f"output to accept: {_clip(_short(recs[0].output), 200)}")
    budget = spec.budget
    cost = budget.estimated_usd or budget.per_run_usd
    label = "per-run cap" if budget.estimated_usd is None else "estimated"
    return Description(tuple(lines), f"${cost} ({label})" if cost is not None else None)


def _spec_cost(kind: str, spec: dict[str, Any]) -> str | None:
    try:
        if kind == "Task":
            budget = TaskSpec.model_validate(spec).budget
            found: Decimal | None = budget.estimated_usd or budget.per_run_usd
            return f"${found}" if found is not None else None
        if kind == "Agent":
            daily = AgentSpec.model_validate(spec).budget.daily_usd
            return f"up to ${daily}/day" if daily is not None else None
    except ValueError:
        return None
    return None


def committed_spec(
    repo: MissionRepo, commit: str | None, kind: str, name: str, hint: str | None
) -> dict[str, Any] | None:
    """The spec `commit` declares for Kind/name, reading only the file(s) likely to hold it
    (the one it was applied from, or the conventional path), never the whole tree."""
    if commit is None:
        return None
    try:
        blobs = {b.path: b.sha for b in repo.tree_blobs(commit)}
    except MCError:
        return None
    folder = KIND_DIRS.get(kind)
    candidates = [hint, "mission.yaml"] if kind == "Mission" else [hint]
    if folder:
        candidates += [f"{folder}/{name}.yaml", f"{folder}/{name}.yml"]
    for path in dict.fromkeys(c for c in candidates if c and c in blobs):
        data = repo.read_blobs([blobs[path]])[blobs[path]]
        docs, _ = parse_file(path, data)
        for doc in docs:
            if doc.kind == kind and doc.name == name:
                return doc.spec
    return None


def _short(value: Any) -> str:
    text = "[" + ", ".join(map(str, value)) + "]" if isinstance(value, list) else str(value)
    return _clip(text, 80)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
