"""The engine's in-memory mirror of the state it drives: loaded by Engine.load, kept in line with
the writes engine/enact makes; read by the scheduler's views and the telegram gate check."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from functools import cached_property
from typing import Any

from reconciler.engine.budgets import RunBudget
from reconciler.governance.approvals import GivenApproval, accepted, unchanged_since_seen
from reconciler.tasks.lifecycle import TaskState
from reconciler.tasks.workflow_runs import StepRef, step_task_name, step_task_spec
from specs.models import (
    AgentSpec,
    MissionSpec,
    Policy,
    PolicyRule,
    TaskSpec,
    WorkflowSpec,
    WorkflowStep,
)
from state.records import AppliedResource, DropRow, TaskRow
from state.store import StateReader

FAILURE_STATUSES = frozenset({"retry", "failed"})
BREAKER_WINDOW, BREAKER_FAILURES = 10, 5


@dataclass
class TaskRec:
    name: str
    spec: TaskSpec
    digest: str
    state: TaskState
    reason: str | None
    agent: str | None
    attempts: int
    abandoned: int
    next_attempt_at: datetime | None
    created_at: datetime
    output: Any = None
    outputs: dict[str, Any] | None = None
    runs: int = 0  # every run ever started, abandoned ones included (workspace numbering)
    step: StepRef | None = None  # set when this task is a step of a workflow run
    feedback: str | None = None
    rework: int = 0
    labels: dict[str, str] = field(default_factory=dict)
    review_since: datetime | None = None  # when it entered REVIEW (approvals must be newer)
    run: str | None = None  # the run it is on while ASSIGNED or IN_PROGRESS
    gate_free: bool | None = field(default=None, repr=False)  # approval_gates.gate_free caches

    @cached_property
    def requires(self) -> frozenset[str]:
        return frozenset(self.spec.requires)

    @cached_property
    def depends_on(self) -> tuple[str, ...]:
        return tuple(self.spec.depends_on)

    def as_dependency(self) -> TaskState:
        """Its state as dependents see it: a failed step that may `continue` counts as done."""
        if self.state == TaskState.FAILED and self.step is not None:
            return TaskState.DONE if self.step.step.on_failure == "continue" else TaskState.FAILED
        return self.state


@dataclass
class AgentRec:
    name: str
    spec: AgentSpec
    digest: str
    status: str  # effective: git status unless the system quarantined this exact spec
    reason: str | None = None
    running: int = 0
    spent_today: Decimal = Decimal(0)
    recent: deque[bool] = field(default_factory=lambda: deque(maxlen=BREAKER_WINDOW))
    commit: str | None = None  # the commit its applied spec (and code) was applied at

    def breaker_tripped(self) -> bool:
        return sum(self.recent) >= BREAKER_FAILURES


@dataclass
class InFlight:
    run_id: str
    task: str
    agent: str
    attempt: int
    per_run_cap: Decimal | None
    pid: int | None = None
    proc_start: int | None = None
    started: bool = False  # its process started (and the task was told so)
    stale: str | None = None  # why its task no longer wants it (deleted, canceled, …)
    budget: RunBudget | None = None  # what it reserves and may spend (engine/budgets.py)


@dataclass
class RunRec:
    """A workflow run the engine drives: its pinned definition and resolved inputs."""

    name: str
    workflow: str
    spec: WorkflowSpec
    inputs: dict[str, Any]
    status: str

    def step_names(self) -> list[str]:
        return [step_task_name(self.name, s.id) for s in self.spec.steps]


@dataclass
class World:
    mission_name: str
    mission: MissionSpec
    commit: str | None
    tasks: dict[str, TaskRec]
    agents: dict[str, AgentRec]
    day: date
    memory: dict[str, dict[str, Any]]
    drops: dict[str, list[DropRow]]
    in_flight: dict[str, InFlight] = field(default_factory=dict)
    runs: dict[str, RunRec] = field(default_factory=dict)
    approvals: dict[str, tuple[GivenApproval, ...]] = field(default_factory=dict)
    approvers: frozenset[str] = frozenset()
    proposed_rules: tuple[PolicyRule, ...] = ()  # of the last planned commit; gates use both
    # Spent today by agents no longer declared: still the mission's (deleting an agent in a
    # commit must not give its spend back to the mission's daily cap).
    retired_spent_today: Decimal = Decimal(0)

    @property
    def mission_spent_today(self) -> Decimal:
        spent = sum((a.spent_today for a in self.agents.values()), Decimal(0))
        return spent + self.retired_spent_today

    def states(self) -> dict[str, TaskState]:
        """Task states as dependents see them: a failed step that may `continue` counts as done."""
        return {t.name: t.as_dependency() for t in self.tasks.values()}

    def roll_day(self, today: date) -> bool:
        """Budgets are per UTC day; a new day resets what was spent."""
        if today == self.day:
            return False
        self.day = today
        for agent in self.agents.values():
            agent.spent_today = Decimal(0)
        self.retired_spent_today = Decimal(0)
        return True


def task_record(
    row: TaskRow,
    resource: AppliedResource | None,
    step: tuple[RunRec, WorkflowStep] | None,
    run_resource: AppliedResource | None,
    runs: int = 0,
) -> TaskRec | None:
    """The engine's record of one task row: a Task resource, or a step of a workflow run
    (approved against its run's digest); None for a task no longer declared."""
    labels: dict[str, str] = {}
    ref: StepRef | None = None
    if resource is not None:
        spec, digest, labels = (
            TaskSpec.model_validate(resource.spec),
            resource.digest,
            resource.labels,
        )
    elif step is not None:
        run, step_spec = step
        spec = step_task_spec(run.name, run.workflow, step_spec)
        digest = run_resource.digest if run_resource else run.name
        ref = StepRef(run.name, step_spec)
    else:
        return None
    return TaskRec(
        row.name,
        spec,
        digest,
        TaskState(row.state),
        row.reason,
        row.agent,
        row.attempts,
        row.abandoned,
        row.next_attempt_at,
        row.created_at,
        row.output,
        row.outputs,
        runs,
        ref,
        row.feedback,
        row.rework,
        labels,
        row.updated_at if row.state == TaskState.REVIEW else None,
    )


def effective_mode(
    overrides: dict[str, tuple[str, str, str | None, datetime]], git_mode: str
) -> str | None:
    """An emergency mode override holds until lifted or until a commit changes the mode."""
    mode, base = overrides.get("mode"), overrides.get("mode.git")
    if mode is None or (base is not None and base[0] != git_mode):
        return None
    return mode[0]


def load_world(reader: StateReader, today: date) -> World | None:
    """Everything the engine needs, in a handful of statements; None when nothing is applied."""
    resources = reader.resources()
    mission_res = next((r for r in resources.values() if r.kind == "Mission"), None)
    if mission_res is None:
        return None
    specs = {r.name: r for r in resources.values() if r.kind == "Task"}
    counts = reader.run_counts()
    runs = {
        r.name: RunRec(
            r.name, r.workflow, WorkflowSpec.model_validate(r.workflow_spec), r.inputs, r.status
        )
        for r in reader.workflow_runs()
    }
    steps = {
        step_task_name(run.name, s.id): (run, s) for run in runs.values() for s in run.spec.steps
    }
    tasks: dict[str, TaskRec] = {}
    for row in reader.tasks():
        step = steps.get(row.name)
        run_res = resources.get(f"WorkflowRun/{step[0].name}") if step else None
        rec = task_record(row, specs.get(row.name), step, run_res, counts.get(row.name, 0))
        if rec is not None:  # None: a deleted task's history
            tasks[row.name] = rec
    agents = _agents(reader, [r for r in resources.values() if r.kind == "Agent"], today)
    mission = MissionSpec.model_validate(mission_res.spec)
    mode_override = effective_mode(reader.overrides(), mission.mode)
    if mode_override is not None:
        mission = mission.model_copy(update={"mode": mode_override})
    drops: dict[str, list[DropRow]] = {}
    for d in reader.drops():
        drops.setdefault(d.task, []).append(d)
    return World(
        mission_name=mission_res.name,
        mission=mission,
        commit=reader.applied_commit(),
        tasks=tasks,
        agents=agents,
        day=today,
        memory=reader.memory(),
        drops=drops,
        runs=runs,
        approvals=unchanged_since_seen(
            accepted(reader.approvals(status="accepted")), reader.target_digests_since()
        ),
        approvers=frozenset(a.name for a in mission.approvers),
        proposed_rules=_proposed_rules(reader),
        retired_spent_today=sum(
            (v for k, v in reader.spend_by_agent(today).items() if k not in agents), Decimal(0)
        ),
    )


def _proposed_rules(reader: StateReader) -> tuple[PolicyRule, ...]:
    """The policy rules of the last planned commit; none when it cannot be read (the applied
    rules still hold: this can only add strictness)."""
    policy = reader.proposed_policy()
    try:
        return tuple(Policy.model_validate(policy).rules) if policy else ()
    except ValueError:
        return ()


def _agents(
    reader: StateReader, resources: list[AppliedResource], today: date
) -> dict[str, AgentRec]:
    """Each agent with its effective status, today's spend and its loop-breaker window."""
    overrides = reader.agent_status_rows()
    spent = reader.spend_by_agent(today)
    recent = reader.recent_outcomes(BREAKER_WINDOW)
    agents: dict[str, AgentRec] = {}
    for res in resources:
        spec = AgentSpec.model_validate(res.spec)
        status: str = spec.status
        reason: str | None = None
        override = overrides.get(res.name)
        since: datetime | None = None
        if override is not None and override[2] == res.digest:
            # still quarantined: keep the failures that tripped the breaker in view
            status, reason = override[0], override[1]
        elif override is not None:
            since = override[3]  # a new spec lifted the quarantine: count failures afresh
        agent = AgentRec(
            res.name, spec, res.digest, status, reason, 0, spent.get(res.name, Decimal(0))
        )
        agent.commit = res.commit
        window = [s for s, started in recent.get(res.name, []) if since is None or started > since]
        agent.recent.extend(s in FAILURE_STATUSES for s in reversed(window))
        agents[res.name] = agent
    return agents
