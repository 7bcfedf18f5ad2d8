"""Read-outs for `mc runs`, `agents`, `logs`, `memory` and `drops`; called by cli/work.py."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from reconciler.commands.context import MissionContext
from reconciler.engine.launch import Paths
from specs.errors import MCError
from state.errors import StateLocked
from state.records import DropRow, RunRow


def runs(ctx: MissionContext, task: str | None, limit: int) -> list[RunRow]:
    with ctx.read_state() as state:
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


def agents(ctx: MissionContext) -> list[AgentReport]:
    from reconciler.engine.mirror import load_world

    today = ctx.clock().date()
    with ctx.read_state() as state:
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


def find_run(ctx: MissionContext, target: str) -> RunRow:
    """A run by id, or the latest run of a task by name."""
    with ctx.read_state() as state:
        run = state.reader.run(target)
        if run is None:
            latest = state.reader.runs(task=target, limit=1)
            run = latest[0] if latest else None
    if run is None:
        raise MCError(f"no run or task with runs named {target!r} (see `mc runs`)")
    return run


def latest_workspace(ctx: MissionContext, task: str) -> Path | None:
    """The newest attempt directory of a task, found on disk: used while another process
    (a running `mc apply`) holds the state and the run table cannot be read."""
    base = ctx.repo.mc_dir / "work" / task
    if not base.is_dir() or "/" in task or task.startswith("."):
        return None
    attempts = [p for p in base.iterdir() if p.is_dir() and p.name.isdigit()]
    return max(attempts, key=lambda p: int(p.name)) if attempts else None


def run_ended(ctx: MissionContext, run_id: str) -> bool | None:
    """Whether the run has ended; None when the state is busy (locked by a writer)."""
    try:
        with ctx.read_state() as state:
            run = state.reader.run(run_id)
    except StateLocked:
        return None
    return run is None or run.ended_at is not None


def memory(ctx: MissionContext, agent: str) -> dict[str, dict[str, Any]]:
    with ctx.read_state() as state:
        found = state.reader.memory(f"agent:{agent}")
        if not found and state.reader.resource("Agent", agent) is None:
            raise MCError(f"unknown agent {agent!r} (see `mc agents`)")
        return found


def drops(ctx: MissionContext, task: str) -> list[tuple[DropRow, Path]]:
    paths = Paths(ctx.repo.root, ctx.repo.mc_dir)
    with ctx.read_state() as state:
        found = state.reader.drops(task)
    return [(d, paths.drop_file(d.sha256)) for d in found]
