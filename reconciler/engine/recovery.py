"""Crash recovery: finish the runs a dead reconciler left LAUNCHING or RUNNING."""

from __future__ import annotations

from datetime import datetime

from reconciler.runtime.procs import kill_by_run_id, kill_process_group
from reconciler.tasks.lifecycle import transition
from state.records import NewEvent
from state.store import State
from state.write_batch import RunUpdate, TaskWrite, WriteBatch, write_batch

ACTOR = "reconciler"


def recover_orphans(state: State, now: datetime) -> int:
    """Kill what still runs (pid + start time, or by MC_RUN_ID when no pid was recorded yet),
    record the runs as abandoned, and requeue their tasks without counting an attempt."""
    runs = state.reader.runs(states=["LAUNCHING", "RUNNING"])
    if not runs:
        return 0
    batch = WriteBatch()
    tasks = {t.name: t for t in state.reader.tasks([r.task for r in runs])}
    for run in runs:
        if run.pid and run.proc_start:
            kill_process_group(run.pid, run.proc_start, grace_s=2.0)
        else:
            kill_by_run_id(run.id)
        why = f"abandoned: reconciler pid {run.owner_pid} stopped while it ran"
        batch.run_updates.append(
            RunUpdate(
                run.id,
                "ENDED",
                ended_at=now,
                status="abandoned",
                error_class="abandoned",
                error=why,
            )
        )
        task = tasks.get(run.task)
        if task is not None and task.state in ("ASSIGNED", "IN_PROGRESS"):
            t = transition(task.name, task.state, "INBOX", ACTOR, why, run.id)
            batch.add_task(
                TaskWrite(
                    task.name,
                    t.source,
                    t.target,
                    t.key,
                    ACTOR,
                    why,
                    attempts=max(task.attempts - 1, 0),
                    abandoned=task.abandoned + 1,
                )
            )
        batch.events.append(NewEvent(ACTOR, "run.recovered", f"Run/{run.id}", {"task": run.task}))
    write_batch(state.db, batch, now)
    return len(runs)
