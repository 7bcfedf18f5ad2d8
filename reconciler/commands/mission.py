"""What each `mc` command does, as one call per command over a mission repo and its state."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reconciler.plan.apply import ApplyResult, StalePlan, check_fresh

__all__ = ["ApplyResult"]
from reconciler.engine.launch import Paths
from reconciler.plan.actions import Plan
from reconciler.plan.codec import plan_from_json, plan_to_json
from reconciler.plan.pipeline import CommitPlan, plan_commit
from reconciler.repo.source import MissionRepo
from specs.desired import Desired
from specs.errors import MCError
from state.errors import StateLocked
from state.records import DropRow, Event, PendingAction, RunRow
from state.store import State, StateReader

if TYPE_CHECKING:  # the execution engine loads only when a command drives or reads work
    from reconciler.engine.until_idle import Converged, Progress

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    """Naive UTC, the form DuckDB TIMESTAMP columns hold."""
    return datetime.now(UTC).replace(tzinfo=None)


@dataclass(frozen=True)
class Workspace:
    """The repo the user pointed at and where its state lives."""

    repo: MissionRepo
    clock: Clock = utcnow

    @classmethod
    def at(cls, root: Path, state: Path | None = None) -> Workspace:
        env_state = os.environ.get("MC_STATE")
        path = state or (Path(env_state) if env_state else None)
        repo = MissionRepo(root, path)
        repo.ensure_mc_ignored()
        return cls(repo)

    def read_state(self) -> State:
        try:
            return State.open(self.repo.state_path, write=False)
        except StateLocked as exc:
            raise self._served(exc, "read it through the dashboard's API at") from None

    def write_state(self) -> State:
        try:
            return State.open(self.repo.state_path, write=True)
        except StateLocked as exc:
            raise self._served(
                exc, "commit your change instead; serve applies it. Dashboard:"
            ) from None

    def served_by(self) -> tuple[int, str] | None:
        """(pid, url) of the `mc serve` that holds this repo's state, if one does."""
        try:
            info = json.loads((self.repo.mc_dir / "serve.json").read_text())
            pid, url = int(info["pid"]), str(info["url"])
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return (pid, url) if Path(f"/proc/{pid}").exists() else None

    def _served(self, exc: StateLocked, advice: str) -> StateLocked:
        served = self.served_by()
        if served is None or (exc.pid is not None and exc.pid != served[0]):
            return exc
        error = StateLocked(str(self.repo.state_path), served[0])
        error.args = (
            f"`mc serve` (pid {served[0]}) holds this repo's state; {advice} {served[1]}",
        )
        return error


def validate(ws: Workspace, rev: str | None) -> Desired:
    return ws.repo.desired(rev)


def make_plan(ws: Workspace, rev: str | None) -> CommitPlan:
    desired = ws.repo.desired(rev)  # spec errors first, before any state is read
    with ws.read_state() as state:
        return plan_commit(state.reader, ws.repo, desired, ws.clock())


def save_plan(plan: Plan, path: Path) -> None:
    path.write_text(json.dumps(plan_to_json(plan), indent=2, default=str) + "\n")


def load_plan(path: Path) -> Plan:
    try:
        data = json.loads(path.read_text())
        return plan_from_json(data)
    except OSError as exc:
        raise MCError(f"{path}: cannot read plan ({exc.strerror})") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise MCError(f"{path}: not a valid plan file ({exc})") from None


@dataclass(frozen=True)
class Drive:
    """How `mc apply` follows the work after applying (None: record only, `--no-wait`)."""

    progress: Progress | None = None
    should_stop: Callable[[], bool] = lambda: False


@dataclass(frozen=True)
class Applied:
    plan: Plan
    result: ApplyResult | None  # None: nothing to apply, or the person said no
    converged: Converged | None = None


def apply_saved(ws: Workspace, path: Path, actor: str, drive: Drive | None) -> Applied:
    plan = load_plan(path)
    head = ws.repo.resolve("HEAD") if plan.commit else None
    with ws.read_state() as state:
        check_fresh(plan, head, state.reader.serial())  # refuse before taking the write lock
    assert plan.commit is not None
    desired = ws.repo.desired(plan.commit)
    with ws.write_state() as state:
        # The file is only checksummed: trust nothing in it that planning would not produce
        # again now, so an edited status ("apply" for an unapproved action) is refused.
        again = plan_commit(state.reader, ws.repo, desired, ws.clock())
        if again.plan.digest != plan.digest:
            raise StalePlan(
                f"{path}: planning commit {plan.commit[:12]} again gives a different plan"
                " (approvals changed, or the file was edited); run `mc plan` again"
            )
        result = again.apply(state, ws.clock(), actor)
        return Applied(plan, result, _drive(ws, state, drive))


def apply_now(
    ws: Workspace, actor: str, confirm: Callable[[Plan], bool], drive: Drive | None
) -> Applied:
    """Plan against HEAD, show it (via confirm), apply it and drive the work, under one lock."""
    desired = ws.repo.desired("HEAD")
    with ws.write_state() as state:
        found = plan_commit(state.reader, ws.repo, desired, ws.clock())
        plan = found.plan
        if plan.actions and not confirm(plan):
            return Applied(plan, None)
        result = found.apply(state, ws.clock(), actor) if plan.actions else None
        return Applied(plan, result, _drive(ws, state, drive))


def _drive(ws: Workspace, state: State, drive: Drive | None) -> Converged | None:
    if drive is None:
        return None
    from reconciler.engine.until_idle import converge

    return converge(ws.repo, state, ws.clock, drive.progress, drive.should_stop)


ATTENTION_STATES = ("FAILED", "BLOCKED", "NEEDS_APPROVAL", "REVIEW")


@dataclass(frozen=True)
class StatusReport:
    mission: str | None
    mode: str | None
    applied_commit: str | None
    head: str | None
    serial: int
    tasks: dict[str, int]
    pending: list[PendingAction]
    agents: list[dict[str, Any]]
    dirty: list[str]
    attention: list[dict[str, Any]]  # tasks that need a person, with why
    overrides: dict[str, Any]


def status(ws: Workspace) -> StatusReport:
    with ws.read_state() as state:
        return status_with(state.reader, ws.repo)


def status_with(r: StateReader, repo: MissionRepo) -> StatusReport:
    """The status report from any reader (the CLI's own, or serve's for `mc status`)."""
    try:
        head: str | None = repo.resolve("HEAD")
    except MCError:
        head = None
    resources = r.resources()
    mission = next((res for res in resources.values() if res.kind == "Mission"), None)
    overrides = r.agent_overrides()
    agents = [
        {
            "name": res.name,
            "status": overrides.get(res.name, (res.spec.get("status", "active"), None))[0],
            "capabilities": res.spec.get("capabilities", []),
            "concurrency": res.spec.get("concurrency", 1),
        }
        for res in sorted(resources.values(), key=lambda x: x.name)
        if res.kind == "Agent"
    ]
    return StatusReport(
        mission=mission.name if mission else None,
        mode=mission.spec.get("mode") if mission else None,
        applied_commit=r.applied_commit(),
        head=head,
        serial=r.serial(),
        tasks=r.task_counts(),
        pending=r.pending(),
        agents=agents,
        dirty=repo.dirty_paths() if head else [],
        attention=[
            {"task": t.name, "state": t.state, "reason": t.reason}
            for t in r.tasks_in(ATTENTION_STATES, limit=20)
        ],
        overrides={
            k: {"value": v[0], "actor": v[1], "reason": v[2], "since": v[3]}
            for k, v in r.overrides().items()
        },
    )


def status_to_json(report: StatusReport) -> dict[str, Any]:
    """The stable `mc status --json` shape (README)."""
    return {
        "mission": report.mission,
        "mode": report.mode,
        "applied_commit": report.applied_commit,
        "head": report.head,
        "state_serial": report.serial,
        "tasks": report.tasks,
        "agents": report.agents,
        "pending": [
            {
                "target": p.key,
                "action": p.action,
                "digest": p.digest,
                "risk": p.risk,
                "reason": p.reason,
                "commit": p.commit,
                "since": p.since.isoformat(),
            }
            for p in report.pending
        ],
        "uncommitted": report.dirty,
        "attention": report.attention,
        "overrides": {
            k: {**v, "since": v["since"].isoformat()} for k, v in report.overrides.items()
        },
    }


def status_from_json(data: dict[str, Any]) -> StatusReport:
    """Back from the JSON shape (a status read through `mc serve`)."""
    return StatusReport(
        mission=data["mission"],
        mode=data["mode"],
        applied_commit=data["applied_commit"],
        head=data["head"],
        serial=data["state_serial"],
        tasks=data["tasks"],
        pending=[
            PendingAction(
                p["target"],
                p["action"],
                p["digest"],
                p["risk"],
                p["reason"],
                p["commit"],
                datetime.fromisoformat(p["since"]),
            )
            for p in data["pending"]
        ],
        agents=data["agents"],
        dirty=data["uncommitted"],
        attention=data["attention"],
        overrides={
            k: {**v, "since": datetime.fromisoformat(v["since"])}
            for k, v in data["overrides"].items()
        },
    )


def event_to_json(e: Event) -> dict[str, Any]:
    return {
        "seq": e.seq,
        "time": e.time.isoformat(),
        "actor": e.actor,
        "kind": e.kind,
        "subject": e.subject,
        "data": e.data,
        "commit": e.commit,
    }


def event_from_json(d: dict[str, Any]) -> Event:
    return Event(
        d["seq"],
        datetime.fromisoformat(d["time"]),
        d["actor"],
        d["kind"],
        d["subject"],
        d["data"],
        d["commit"],
    )


def events(ws: Workspace, since: datetime | None, limit: int) -> list[Event]:
    with ws.read_state() as state:
        return state.reader.events(since=since, limit=limit)


# --- execution read-outs (`mc runs`, `mc agents`, `mc logs`, `mc memory`, `mc drops`) -------


def runs(ws: Workspace, task: str | None, limit: int) -> list[RunRow]:
    with ws.read_state() as state:
        return state.reader.runs(task=task, limit=limit)


@dataclass(frozen=True)
class AgentReport:
    name: str
    status: str
    reason: str | None
    capabilities: list[str]
    concurrency: int
    running: int
    spent_today: Decimal
    daily_cap: Decimal | None
    recent_failures: int
    recent_runs: int


def agents(ws: Workspace) -> list[AgentReport]:
    from reconciler.engine.mirror import load_world

    today = ws.clock().date()
    with ws.read_state() as state:
        world = load_world(state.reader, today)
        running = state.reader.runs(states=["LAUNCHING", "RUNNING"])
    if world is None:
        return []
    busy: dict[str, int] = {}
    for run in running:
        busy[run.agent] = busy.get(run.agent, 0) + 1
    return [
        AgentReport(
            a.name,
            a.status,
            a.reason,
            list(a.spec.capabilities),
            a.spec.concurrency,
            busy.get(a.name, 0),
            a.spent_today,
            a.spec.budget.daily_usd,
            sum(a.recent),
            len(a.recent),
        )
        for a in sorted(world.agents.values(), key=lambda a: a.name)
    ]


def find_run(ws: Workspace, target: str) -> RunRow:
    """A run by id, or the latest run of a task by name."""
    with ws.read_state() as state:
        run = state.reader.run(target)
        if run is None:
            latest = state.reader.runs(task=target, limit=1)
            run = latest[0] if latest else None
    if run is None:
        raise MCError(f"no run or task with runs named {target!r} (see `mc runs`)")
    return run


def latest_workspace(ws: Workspace, task: str) -> Path | None:
    """The newest attempt directory of a task, found on disk: used while another process
    (a running `mc apply`) holds the state and the run table cannot be read."""
    base = ws.repo.mc_dir / "work" / task
    if not base.is_dir() or "/" in task or task.startswith("."):
        return None
    attempts = [p for p in base.iterdir() if p.is_dir() and p.name.isdigit()]
    return max(attempts, key=lambda p: int(p.name)) if attempts else None


def run_ended(ws: Workspace, run_id: str) -> bool | None:
    """Whether the run has ended; None when the state is busy (locked by a writer)."""
    try:
        with ws.read_state() as state:
            run = state.reader.run(run_id)
    except StateLocked:
        return None
    return run is None or run.ended_at is not None


def memory(ws: Workspace, agent: str) -> dict[str, dict[str, Any]]:
    with ws.read_state() as state:
        found = state.reader.memory(f"agent:{agent}")
        if not found and state.reader.resource("Agent", agent) is None:
            raise MCError(f"unknown agent {agent!r} (see `mc agents`)")
        return found


def drops(ws: Workspace, task: str) -> list[tuple[DropRow, Path]]:
    paths = Paths(ws.repo.root, ws.repo.mc_dir)
    with ws.read_state() as state:
        found = state.reader.drops(task)
    return [(d, paths.drop_file(d.sha256)) for d in found]
