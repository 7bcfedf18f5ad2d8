"""Crash recovery of the runs a dead reconciler left LAUNCHING/RUNNING; called by Engine.

Engine.recover kills what still runs; Engine.load hands each orphan to the tick as a finished
run. An orphan whose agent left a complete, valid result.json (files protocol, read at the same
strict boundary as a watched run's) is recorded with that result — whether it ended on its own
or recovery had to stop it after it wrote the file — so it is not run again under a new
MC_RUN_ID. Without one (missing, cut short, not the schema) it is abandoned and runs again.
"""

from __future__ import annotations

import os
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from reconciler.engine.launch import MissingSecret, per_run_cap, resolve_env
from reconciler.engine.mirror import InFlight, World
from reconciler.runtime.leftovers import left_outcome
from reconciler.runtime.procs import kill_by_run_id, kill_process_group
from reconciler.runtime.types import Outcome
from specs.fields import SecretRef
from state.records import NewEvent, RunRow
from state.store import State
from state.write_batch import RunUpdate, WriteBatch, write_batch

ACTOR = "reconciler"


@dataclass(frozen=True, slots=True)
class Orphan:
    run: RunRow
    was_alive: bool  # recovery had to kill it (said in the reason if it is abandoned)
    attached: bool = False  # an executor took it over (a Ray run): it ends through poll()


def find_orphans(state: State, attached: Collection[str] = ()) -> list[Orphan]:
    """Kill what still runs (pid + start time, or by MC_RUN_ID when no pid was recorded),
    except the runs in `attached`, which an executor re-attached (they go on running)."""
    orphans = []
    for run in state.reader.runs(states=["LAUNCHING", "RUNNING"]):
        if run.id in attached:
            orphans.append(Orphan(run, False, attached=True))
            continue
        if run.pid and run.proc_start:
            alive = kill_process_group(run.pid, run.proc_start, grace_s=2.0)
        else:
            alive = kill_by_run_id(run.id)
        orphans.append(Orphan(run, alive))
    return orphans


def adopt(world: World, orphans: list[Orphan], now: datetime) -> list[Outcome]:
    """Put each orphan back in flight and return how it ended, for the tick to record."""
    outcomes = []
    for orphan in orphans:
        run = orphan.run
        flight = InFlight(run.id, run.task, run.agent, run.attempt, None, run.pid, run.proc_start)
        flight.started = run.state == "RUNNING"
        world.in_flight[run.id] = flight
        task, agent = world.tasks.get(run.task), world.agents.get(run.agent)
        if agent is not None:
            agent.running += 1
        if task is not None and task.run is None:
            task.run = run.id
        if not orphan.attached:
            outcomes.append(_outcome(world, orphan, now))
    return outcomes


def _outcome(world: World, orphan: Orphan, now: datetime) -> Outcome:
    run = orphan.run
    started = run.started_at.timestamp()
    task, agent = world.tasks.get(run.task), world.agents.get(run.agent)
    if run.workspace and task is not None and agent is not None:
        try:
            env = resolve_env(agent.spec.env, os.environ)
        except MissingSecret:
            env = {}
        refs = [k for k, v in agent.spec.env.items() if isinstance(v, SecretRef)]
        secrets = [env[k] for k in refs if k in env]
        left = left_outcome(
            run.id,
            Path(run.workspace),
            agent.spec.protocol,
            per_run_cap(task, agent),
            secrets,
            started,
        )
        if left is not None:
            return left
    why = f"abandoned: reconciler pid {run.owner_pid} stopped while it ran"
    if orphan.was_alive:
        why += "; its agent was still running and was stopped"
    return Outcome(run.id, "abandoned", why, None, started_at=started, ended_at=now.timestamp())


def orphan_events(orphans: list[Orphan]) -> list[NewEvent]:
    return [
        NewEvent(ACTOR, "run.recovered", f"Run/{o.run.id}", {"task": o.run.task}) for o in orphans
    ]


def end_unadopted(state: State, orphans: list[Orphan], now: datetime) -> None:
    """Nothing is applied (no mission): record the runs as abandoned, touching no task."""
    batch = WriteBatch(events=orphan_events(orphans))
    for orphan in orphans:
        why = f"abandoned: reconciler pid {orphan.run.owner_pid} stopped while it ran"
        batch.run_updates.append(
            RunUpdate(
                orphan.run.id,
                "ENDED",
                ended_at=now,
                status="abandoned",
                error_class="abandoned",
                error=why,
            )
        )
    write_batch(state.db, batch, now)
