"""Read-outs for `mc runs`, `agents`, `logs`, `memory` and `drops` over one reader; served by
read_views.py (locally, or by the process holding the state)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from reconciler.engine.launch import Paths
from reconciler.repo.source import MissionRepo
from specs.errors import MCError
from specs.money import money_json
from state.records import DropRow, RunRow
from state.store import StateReader


def run_json(r: RunRow) -> dict[str, Any]:
    """The `mc runs --json` shape of one run (money as a full-precision decimal string)."""
    return {
        "id": r.id,
        "task": r.task,
        "attempt": r.attempt,
        "agent": r.agent,
        "state": r.state,
        "status": r.status,
        "error_class": r.error_class,
        "error": r.error,
        "exit_code": r.exit_code,
        "pid": r.pid,
        "started_at": r.started_at.isoformat(),
        "ended_at": r.ended_at.isoformat() if r.ended_at else None,
        "cost_usd": money_json(r.cost_usd),
        "tokens": r.tokens,
        "workspace": r.workspace,
    }


def runs_json(reader: StateReader, runs: list[RunRow]) -> list[dict[str, Any]]:
    """`run_json` of each run (newest first, as `StateReader.runs` gives them), with `output`
    and `outputs`: the result its task keeps (redacted, as stored) for the task's latest ended
    run, null for the others (only the latest result is stored)."""
    tasks = {t.name: t for t in reader.tasks(sorted({r.task for r in runs}))}
    seen: set[str] = set()
    found = []
    for r in runs:
        row = tasks.get(r.task) if r.task not in seen else None
        seen.add(r.task)
        latest = row is not None and r.state == "ENDED"
        found.append(
            run_json(r)
            | {
                "output": row.output if latest and row else None,
                "outputs": row.outputs if latest and row else None,
            }
        )
    return found


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


def agents(reader: StateReader, today: date) -> list[AgentReport]:
    """Each applied agent: effective status, load, spend today, recent failures."""
    from reconciler.engine.mirror import load_world

    world = load_world(reader, today)
    running = reader.runs(states=["LAUNCHING", "RUNNING"])
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


def find_run(reader: StateReader, target: str) -> RunRow:
    """A run by id, or the latest run of a task by name."""
    run = reader.run(target)
    if run is None:
        latest = reader.runs(task=target, limit=1)
        run = latest[0] if latest else None
    if run is None:
        raise MCError(f"no run or task with runs named {target!r} (see `mc runs`)")
    return run


def memory(reader: StateReader, agent: str) -> dict[str, Any]:
    """An agent's memory (key -> value); MCError for an agent never applied."""
    found = reader.memory(f"agent:{agent}")
    if not found and reader.resource("Agent", agent) is None:
        raise MCError(f"unknown agent {agent!r} (see `mc agents`)")
    return found.get(f"agent:{agent}", {})


def drops(reader: StateReader, repo: MissionRepo, task: str) -> list[tuple[DropRow, Path]]:
    """A task's content drops and where each is stored under .mc/drops/."""
    paths = Paths(repo.root, repo.mc_dir)
    return [(d, paths.drop_file(d.sha256)) for d in reader.drops(task)]
