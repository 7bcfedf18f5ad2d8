"""What the dashboard shows of the work: task lists and details, agents (workflow runs: runs.py).

Pure reads, like `api.views`: the readers of one request, the mission's `Paths` (logs, drops
and task.json are read from disk through `api.files`) and `now` in; frozen dataclasses out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from api import files
from api.sync import SyncState, held, sync_state, with_diff
from api.task_links import Links, denied_by, spec_yaml, task_links
from api.timeline import Timeline, build_timeline
from api.views import MAX_PAGE_SIZE, TASK_STATES, Readers, money
from reconciler.commands.context import utcnow
from reconciler.commands.task_views import rework_rounds
from reconciler.engine.launch import Paths
from reconciler.engine.mirror import FAILURE_STATUSES
from reconciler.governance.confinement import unconfined_by
from specs.models import RetryPolicy
from state.dashboard import FailedRun, TaskFilter, TaskPage
from state.records import (
    AppliedResource,
    ApprovalRow,
    DropRow,
    Event,
    PendingAction,
    RunRow,
    TaskRow,
)

RECENT_WINDOW = 10  # the loop breaker's window: failures among an agent's last 10 runs

# --- tasks -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TaskListing:
    page: TaskPage
    filter: TaskFilter
    label: str  # the label filter as typed: key=value or key
    number: int  # 1-based page number
    pages: int
    states: list[str]
    agents: list[str]
    out_of_sync: dict[str, SyncState]  # Kind/name -> what HEAD's last plan holds back


def parse_label(label: str | None) -> tuple[str | None, str | None]:
    if not label or not label.strip():
        return None, None
    key, sep, value = label.strip().partition("=")
    return key.strip(), value.strip() if sep else None


def task_listing(
    r: Readers,
    *,
    state: str | None,
    agent: str | None,
    label: str | None,
    q: str | None,
    run: str | None,
    page: int,
    limit: int,
) -> TaskListing:
    key, value = parse_label(label)
    f = TaskFilter(
        state=state or None,
        agent=agent or None,
        label_key=key,
        label_value=value,
        search=(q or "").strip() or None,
        workflow_run=run or None,
    )
    limit = max(1, min(limit, MAX_PAGE_SIZE))
    page = max(1, page)
    found = r.dash.task_page(f, limit=limit, offset=(page - 1) * limit)
    return TaskListing(
        found,
        f,
        (label or "").strip(),
        page,
        max(1, -(-found.total // limit)),
        TASK_STATES,
        r.dash.task_agents(),
        held_states(r),
    )


@dataclass(frozen=True, slots=True)
class Attempt:
    run: RunRow
    stdout: files.LogTail | None
    stderr: files.LogTail | None


@dataclass(frozen=True, slots=True)
class DropView:
    drop: DropRow
    kind: files.DropKind
    url: str
    text: str | None = None  # the start of a text/markdown drop, shown inline
    truncated: bool = False


@dataclass(frozen=True, slots=True)
class TaskDetail:
    name: str
    kind: str  # Task (declared in git) | step (of a workflow run) | deleted
    title: str
    state: str
    reason: str | None
    agent: str | None
    attempts: int  # runs of its agent, each numbered like its workspace (rework, abandoned too)
    abandoned: int  # of those, runs that lost their heartbeat
    rework: int  # times this step sent its verified step back (verifier steps)
    retry_budget_used: int  # tries counted against retry.max_attempts since the last reset
    retry_budget: int  # retry.max_attempts
    next_attempt_at: datetime | None
    created_at: datetime
    updated_at: datetime
    workflow_run: str | None
    step: str | None
    labels: dict[str, str]
    spec: dict[str, Any]
    spec_yaml: str  # the spec as YAML, without nulls
    digest: str | None
    commit: str | None
    path: str | None
    links: Links  # tasks it depends on and tasks that depend on it, with their states
    sync: SyncState | None  # against HEAD, with the field diff; None for a workflow step
    denied_by: str | None  # for a denied task: the approver(s) or the policy rule
    timeline: Timeline | None  # its attempts as bars, and the next retry
    prompt: str | None
    prompt_rendered: bool  # True: from the latest run's task.json; False: the spec's template
    output: Any
    outputs: dict[str, Any] | None
    feedback: str | None
    # requested changes (a reviewer's or a verifier's), oldest first: {round, feedback, by, at}
    rework_rounds: list[dict[str, Any]]
    runs: list[Attempt]
    drops: list[DropView]  # one page of them: drops_offset, at most drops_limit
    drops_total: int
    drops_offset: int
    drops_limit: int
    pending: list[PendingAction]
    approvals: list[ApprovalRow]  # decisions on this task, accepted or rejected, with evidence
    events: list[Event]


def _step_spec(r: Readers, run: str | None, step: str | None) -> tuple[str, dict[str, Any]]:
    found = r.state.workflow_runs([run]) if run else []
    if not found:
        return f"step {step} of run {run}", {}
    steps: list[dict[str, Any]] = found[0].workflow_spec.get("steps", [])
    spec = next((s for s in steps if s.get("id") == step), {})
    return f"{found[0].workflow} › {step} (run {run})", dict(spec)


def _drop_view(paths: Paths, drop: DropRow) -> DropView:
    kind = files.drop_kind(drop.path, drop.media_type)
    url = f"/drops/{drop.sha256}"
    if kind in ("text", "markdown"):
        read = files.drop_text(paths, drop.sha256)
        if read is not None:
            return DropView(drop, kind, url, read[0], read[1])
    return DropView(drop, kind, url)


def _task_identity(
    r: Readers, name: str, row: TaskRow | None, resource: AppliedResource | None
) -> tuple[str, str, dict[str, Any]]:
    """What the task is (declared Task, workflow step, or deleted), its title and its spec."""
    if resource is not None:
        return "Task", str(resource.spec.get("title", name)), resource.spec
    if row is not None and row.workflow_run:
        title, spec = _step_spec(r, row.workflow_run, row.step)
        return "step", title, spec
    return "deleted", name, {}


def _attempt(paths: Paths, run: RunRow) -> Attempt:
    return Attempt(
        run,
        files.log_tail(paths, run.workspace, "stdout.log"),
        files.log_tail(paths, run.workspace, "stderr.log"),
    )


DROPS_PER_PAGE = 100  # a run may leave 1,000 drops (more if its mission allows): page them


def task_detail(
    r: Readers,
    paths: Paths,
    name: str,
    offset: int = 0,
    limit: int = DROPS_PER_PAGE,
    now: datetime | None = None,
) -> TaskDetail | None:
    """The task page; `offset`/`limit` choose which of its content drops are shown."""
    rows = r.state.tasks([name])
    resource = r.state.resource("Task", name)
    if not rows and resource is None:
        return None
    row = rows[0] if rows else None
    kind, title, spec = _task_identity(r, name, row, resource)
    runs = r.state.runs(task=name, limit=50)
    rendered = files.rendered_prompt(paths, runs[0].workspace) if runs else None
    now = now or utcnow()
    digest = resource.digest if resource else None
    pending_keys = {f"Task/{name}"} | (
        {f"WorkflowRun/{row.workflow_run}"} if row and row.workflow_run else set()
    )
    return TaskDetail(
        name=name,
        kind=kind,
        title=title,
        state=row.state if row else "not yet created",
        reason=row.reason if row else None,
        agent=row.agent if row and row.agent else spec.get("agent"),
        attempts=r.state.run_counts([name]).get(name, 0),
        abandoned=row.abandoned if row else 0,
        rework=row.rework if row else 0,
        retry_budget_used=row.attempts if row else 0,
        retry_budget=RetryPolicy.model_validate(spec.get("retry") or {}).max_attempts,
        next_attempt_at=row.next_attempt_at if row else None,
        created_at=row.created_at if row else datetime.min,
        updated_at=row.updated_at if row else datetime.min,
        workflow_run=row.workflow_run if row else None,
        step=row.step if row else None,
        labels=resource.labels if resource else {},
        spec=spec,
        spec_yaml=spec_yaml(spec),
        digest=digest,
        commit=resource.commit if resource else None,
        path=resource.path if resource else None,
        links=task_links(r, name, row, spec),
        sync=_task_sync(r, paths, name, kind),
        denied_by=denied_by(r, row, digest, now),
        timeline=build_timeline(runs, row.next_attempt_at if row else None, now),
        prompt=rendered if rendered is not None else spec.get("prompt"),
        prompt_rendered=rendered is not None,
        output=row.output if row else None,
        outputs=row.outputs if row else None,
        feedback=row.feedback if row else None,
        rework_rounds=rework_rounds(r.dash, f"Task/{name}"),
        runs=[_attempt(paths, run) for run in runs],
        drops=[_drop_view(paths, d) for d in r.state.drops(name, limit=limit, offset=offset)],
        drops_total=r.state.drop_count(name),
        drops_offset=offset,
        drops_limit=limit,
        pending=[p for p in r.state.pending() if p.key in pending_keys],
        approvals=r.dash.approvals(targets=sorted(pending_keys)),
        events=r.dash.event_page(subject=f"Task/{name}", limit=200),
    )


def held_states(r: Readers) -> dict[str, SyncState]:
    """Kind/name -> sync state of every resource HEAD's last plan holds back."""
    return {key: sync_state(key, found) for found in [held(r)] for key in found}


def _task_sync(r: Readers, paths: Paths, name: str, kind: str) -> SyncState | None:
    if kind == "step":  # a step is part of its WorkflowRun resource, synced with it
        return None
    return with_diff(r, paths.repo, sync_state(f"Task/{name}", held(r)))


# --- agents ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AgentView:
    name: str
    status: str  # effective: a quarantine of this exact spec overrides git's status
    reason: str | None
    role: str
    capabilities: list[str]
    command: list[str]
    env: dict[str, Any]  # plain values, or {"from_env": NAME} for secrets (never their values)
    protocol: str
    concurrency: int
    running: int
    running_tasks: list[str]
    heartbeat_age_s: float | None  # the stalest sign of life among its running runs
    spent_today: Decimal
    daily_cap: Decimal | None
    per_run_cap: Decimal | None
    recent_failures: int
    recent_runs: int
    failures: list[FailedRun]
    unconfined_by: str | None  # "agent" | "mission": runs without the sandbox (sandbox: none)
    network: str  # "none" | "host"
    mounts: list[dict[str, str]]  # extra host paths its sandbox shows: {path, mode}
    sync: SyncState  # against HEAD, with the field diff when out of sync


def _effective_status(
    res: AppliedResource, overrides: Mapping[str, tuple[str, str | None, str | None, datetime]]
) -> tuple[str, str | None]:
    """As the engine sees it (engine.mirror.load_world): a system status set for this very
    spec wins; a newer spec in git lifts it."""
    override = overrides.get(res.name)
    if override is not None and override[2] == res.digest:
        return override[0], override[1]
    return str(res.spec.get("status", "active")), None


def _heartbeat_ages(r: Readers, paths: Paths, now: datetime) -> dict[str, tuple[float, list[str]]]:
    out: dict[str, tuple[float, list[str]]] = {}
    for run in r.dash.running_runs():
        beat = files.heartbeat_at(paths, run.workspace)
        last = max(beat, run.started_at) if beat else run.started_at
        age = max(0.0, (now - last).total_seconds())
        prev_age, tasks = out.get(run.agent, (0.0, []))
        out[run.agent] = (max(prev_age, age), [*tasks, run.task])
    return out


def agents(r: Readers, paths: Paths, now: datetime) -> list[AgentView]:
    applied = r.dash.resources_of_kind(["Mission", "Agent"])
    mission = next((res.spec for res in applied if res.kind == "Mission"), None)
    resources = [res for res in applied if res.kind == "Agent"]
    overrides = r.state.agent_status_rows()
    spent = r.state.spend_by_agent(now.date())
    recent = r.state.recent_outcomes(RECENT_WINDOW)
    failures: dict[str, list[FailedRun]] = {}
    for f in r.dash.recent_failures(sorted(FAILURE_STATUSES), 3):
        failures.setdefault(f.agent, []).append(f)
    alive = _heartbeat_ages(r, paths, now)
    pending = held(r)
    views = []
    for res in resources:
        spec = res.spec
        status, reason = _effective_status(res, overrides)
        window = recent.get(res.name, [])
        age, tasks = alive.get(res.name, (None, []))
        views.append(
            AgentView(
                name=res.name,
                status=status,
                reason=reason,
                role=str(spec.get("role", "")),
                capabilities=list(spec.get("capabilities", [])),
                command=list(spec.get("command", [])),
                env=dict(spec.get("env", {})),
                protocol=str(spec.get("protocol", "files")),
                concurrency=int(spec.get("concurrency", 1)),
                running=len(tasks),
                running_tasks=tasks,
                heartbeat_age_s=age,
                spent_today=spent.get(res.name, Decimal(0)),
                daily_cap=money(spec.get("budget", {}).get("daily_usd")),
                per_run_cap=money(spec.get("budget", {}).get("per_run_usd")),
                recent_failures=sum(s in FAILURE_STATUSES for s, _ in window),
                recent_runs=len(window),
                failures=failures.get(res.name, []),
                unconfined_by=unconfined_by(spec, mission),
                network=str(spec.get("network", "none")),
                mounts=list(spec.get("mounts", [])),
                sync=with_diff(r, paths.repo, sync_state(f"Agent/{res.name}", pending)),
            )
        )
    return views
