"""The execution loop: outcomes in, scheduling decisions out, one batched transaction per tick.

Called by `mc apply` (until nothing more can happen without a person) and by `mc serve`.
Intent before side effect: a run row (LAUNCHING) is committed before its process is spawned,
so a crash at any point leaves something `recover()` can find and finish.
"""

from __future__ import annotations

import heapq
import os
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from typing import Any, assert_never

from reconciler.engine import workflow_steps as stepflow
from reconciler.engine.approval_gates import gate
from reconciler.engine.launch import MissingSecret, Paths, build_request, per_run_cap, resolve_env
from reconciler.engine.mirror import AgentRec, InFlight, TaskRec, World, load_world
from reconciler.engine.outcome_rules import settle
from reconciler.engine.recovery import recover_orphans
from reconciler.engine.run_bookkeeping import account, keep_drops, remember
from reconciler.engine.scheduler import (
    AgentView,
    AwaitApproval,
    Block,
    Complete,
    Decision,
    Deny,
    Dispatch,
    MissionView,
    Release,
    TaskView,
    Unblock,
    schedule,
)
from reconciler.runtime.types import Executor, LaunchRequest, Outcome
from reconciler.tasks.lifecycle import transition
from state.records import NewEvent
from state.store import State
from state.write_batch import (
    AgentStatusWrite,
    RunStart,
    RunUpdate,
    TaskWrite,
    WriteBatch,
    write_batch,
)

WAITING = ("INBOX", "BLOCKED", "NEEDS_APPROVAL", "REVIEW")
# A run that ends within this long goes ASSIGNED -> IN_PROGRESS -> … in one write instead of
# two; its pid is unrecorded meanwhile, and recovery finds it by MC_RUN_ID if mc dies then.
MARK_RUNNING_AFTER_S = 0.2
BATCH_WINDOW_S = 0.004
FULL_PASS_S = 30.0  # a safety net: an incremental pass can only miss what time alone changes
ACTOR = "reconciler"


@dataclass
class TickReport:
    dispatched: int = 0
    finished: int = 0
    changed: int = 0
    wake_at: datetime | None = None  # earliest future retry among waiting tasks

    @property
    def busy(self) -> bool:
        return bool(self.dispatched or self.finished or self.changed)


@dataclass
class Engine:
    state: State
    paths: Paths
    executor: Executor
    clock: Callable[[], datetime]
    rng: random.Random = field(default_factory=random.Random)
    world: World | None = None
    stopping: bool = False
    _dirty: bool = True
    _full: bool = True  # the next scheduling pass looks at every waiting task
    _last_full: float = 0.0
    _seen: dict[str, tuple[str, datetime | None]] = field(default_factory=dict)
    _dependents: dict[str, list[str]] | None = None
    _wake_at: datetime | None = None
    _launches: list[LaunchRequest] = field(default_factory=list)

    # --- setup ---------------------------------------------------------------------------

    def load(self) -> bool:
        self.world = load_world(self.state.reader, self.clock().date())
        self._dirty = self._full = True
        self._dependents = None
        return self.world is not None

    def reload(self) -> None:
        """Take in newly applied state (serve, after each commit) without losing runs in
        flight; stop runs whose task was canceled or whose agent is now quarantined."""
        old = self.world
        self.load()
        if old is None or self.world is None:
            return
        world = self.world
        world.in_flight = old.in_flight
        world.memory, world.drops = old.memory | world.memory, world.drops
        for flight in world.in_flight.values():
            task, agent = world.tasks.get(flight.task), world.agents.get(flight.agent)
            if agent is not None:
                agent.running += 1
            if task is None or task.state == "CANCELED":
                self.executor.cancel(flight.run_id, "task canceled in git")
            elif agent is None or agent.status == "quarantined":
                self.executor.cancel(flight.run_id, "agent quarantined")

    def recover(self) -> int:
        """Finish runs a dead reconciler left behind: kill what still runs, requeue the task."""
        return recover_orphans(self.state, self.clock())

    # --- one tick --------------------------------------------------------------------------

    def tick(self) -> TickReport:
        world = self.world
        assert world is not None, "load() first"
        now = self.clock()
        report = TickReport()
        batch = WriteBatch()
        outcomes = self.executor.poll()
        if outcomes and len(outcomes) < len(world.in_flight):
            # Runs started together tend to end together: a few ms of patience turns several
            # transactions into one (each commit costs ~1-3 ms here; a run rarely lasts so little).
            deadline = time.monotonic() + BATCH_WINDOW_S
            while len(outcomes) < len(world.in_flight) and time.monotonic() < deadline:
                self.executor.wait(max(deadline - time.monotonic(), 0.0))
                outcomes += self.executor.poll()
        finished = {o.run_id for o in outcomes}
        self._mark_running(batch, finished)
        for outcome in outcomes:
            self._finish(batch, outcome, now)
        report.finished = len(outcomes)
        # Scheduling only changes when something happened: a run ended, a retry came due, a
        # gate moved, a new day began or the world was (re)loaded. Skipping idle ticks keeps a
        # tick O(finished runs) instead of O(all waiting tasks).
        due = self._wake_at is not None and now >= self._wake_at
        if world.roll_day(now.date()):
            self._dirty = self._full = True
        if outcomes or due or self._dirty:
            self._dirty = False
            if not self.stopping:
                for decision in self._decide(now):
                    self._enact(batch, decision, now, report)
                self._dirty = report.changed > 0
                self._wake_at = self._next_wake(now)
        report.wake_at = self._wake_at
        if not batch.empty() and world.runs:
            stepflow.run_updates(world, batch)
        if not batch.empty():
            write_batch(self.state.db, batch, now)
        launches, self._launches = self._launches, []
        for req in launches:  # spawn only after the intent is committed
            handle = self.executor.launch(req)
            flight = world.in_flight.get(req.run_id)
            if flight is not None:
                flight.pid, flight.proc_start = handle.pid, handle.start_time
                flight.launched_at = time.monotonic()
        return report

    def _mark_running(self, batch: WriteBatch, finished: set[str]) -> None:
        """Record pids of runs spawned last tick; a run that already ended skips straight on."""
        assert self.world is not None
        for flight in self.world.in_flight.values():
            if flight.marked_running or flight.pid is None or flight.run_id in finished:
                continue
            if time.monotonic() - flight.launched_at < MARK_RUNNING_AFTER_S:
                continue
            flight.marked_running = True
            if flight.pid == 0:
                continue  # never started: its outcome explains why
            batch.run_updates.append(
                RunUpdate(flight.run_id, "RUNNING", pid=flight.pid, proc_start=flight.proc_start)
            )
            task = self.world.tasks[flight.task]
            t = transition(
                task.name, task.state, "IN_PROGRESS", ACTOR, "agent started", flight.run_id
            )
            batch.add_task(TaskWrite(task.name, t.source, t.target, t.key, ACTOR, t.reason))
            task.state = "IN_PROGRESS"

    def _finish(self, batch: WriteBatch, outcome: Outcome, now: datetime) -> None:
        world = self.world
        assert world is not None
        flight = world.in_flight.pop(outcome.run_id, None)
        if flight is None:
            return
        task, agent = world.tasks.get(flight.task), world.agents.get(flight.agent)
        if task is None or task.state == "CANCELED":  # deleted or canceled in git meanwhile
            self._record_run_end(batch, outcome, flight, "canceled", now)
            self._account(batch, outcome, flight, now)
            if agent is not None:
                agent.running = max(agent.running - 1, 0)
            return
        # A quarantine stops the agent, not its work: the run is requeued, the task not canceled.
        requeue = self.stopping or (
            outcome.status == "canceled" and agent is not None and agent.status == "quarantined"
        )
        result = settle(task.spec, task.attempts, task.abandoned, outcome, now, self.rng, requeue)
        if requeue and not self.stopping:
            result = replace(result, reason=f"requeued: {outcome.error}")
        if not self.stopping:
            result = stepflow.judge(world, batch, task, outcome, result, now)
        source = task.state
        started = bool(flight.pid)  # pid 0: the process never started (e.g. binary missing)
        via = ("IN_PROGRESS",) if source == "ASSIGNED" and started else ()
        for hop_from, hop_to in zip((source, *via), (*via, result.target), strict=True):
            transition(task.name, hop_from, hop_to, ACTOR, result.reason, outcome.run_id)
        key = f"{task.name}:{source}>{result.target}:{outcome.run_id}"
        output = outcome.output if result.target in ("DONE", "REVIEW") else None
        outputs = dict(outcome.outputs) if result.target in ("DONE", "REVIEW") else None
        batch.add_task(
            TaskWrite(
                task.name,
                source,
                result.target,
                key,
                ACTOR,
                result.reason,
                attempts=result.attempts,
                abandoned=result.abandoned,
                next_attempt_at=result.next_attempt_at,
                output=output,
                outputs=outputs,
                rework=task.rework if task.step else None,
                via=via,
            )
        )
        self._record_run_end(batch, outcome, flight, result.error_class, now)
        task.state, task.reason = result.target, result.reason
        if result.target == "REVIEW":
            task.review_since = now
        task.attempts, task.abandoned = result.attempts, result.abandoned
        task.next_attempt_at = result.next_attempt_at
        if output is not None or outputs is not None:
            task.output, task.outputs = output, outputs
        self._account(batch, outcome, flight, now)
        self._remember(batch, outcome, task, flight.agent)
        self._keep_drops(batch, outcome, task)
        if agent is not None:
            agent.running = max(agent.running - 1, 0)
            if outcome.status not in ("canceled", "abandoned"):
                agent.recent.append(outcome.status in ("retry", "failed"))
                self._maybe_quarantine(batch, agent)
        if result.target == "FAILED":
            batch.events.append(
                NewEvent(ACTOR, "task.failed", f"Task/{task.name}", {"reason": result.reason})
            )

    def _record_run_end(
        self,
        batch: WriteBatch,
        outcome: Outcome,
        flight: InFlight,
        error_class: str | None,
        now: datetime,
    ) -> None:
        task = flight.task
        batch.run_updates.append(
            RunUpdate(
                outcome.run_id,
                "ENDED",
                pid=flight.pid or None,
                proc_start=flight.proc_start or None,
                ended_at=now,
                exit_code=outcome.exit_code,
                status=outcome.status,
                error_class=error_class,
                error=outcome.error,
                cost_usd=outcome.cost_usd,
                tokens=outcome.tokens,
            )
        )
        batch.events.append(
            NewEvent(
                ACTOR,
                "run.ended",
                f"Run/{outcome.run_id}",
                {
                    "task": task,
                    "agent": flight.agent,
                    "status": outcome.status,
                    "error": outcome.error,
                    "cost_usd": str(outcome.cost_usd),
                },
            )
        )

    def _account(
        self, batch: WriteBatch, outcome: Outcome, flight: InFlight, now: datetime
    ) -> None:
        assert self.world is not None
        account(self.world, batch, outcome, flight, now)

    def _remember(self, batch: WriteBatch, outcome: Outcome, task: TaskRec, agent: str) -> None:
        assert self.world is not None
        remember(self.world, batch, outcome, task, agent)

    def _keep_drops(self, batch: WriteBatch, outcome: Outcome, task: TaskRec) -> None:
        assert self.world is not None
        keep_drops(self.world, self.paths, batch, outcome, task, self.clock())

    def _maybe_quarantine(self, batch: WriteBatch, agent: AgentRec) -> None:
        if agent.status != "active" or not agent.breaker_tripped():
            return
        failures = sum(agent.recent)
        reason = f"loop breaker: {failures} of its last {len(agent.recent)} runs failed"
        agent.status, agent.reason = "quarantined", reason
        self._full = True  # its waiting tasks are held now: look at all of them
        batch.agents.append(AgentStatusWrite(agent.name, "quarantined", reason, agent.digest))
        batch.events.append(
            NewEvent(ACTOR, "agent.quarantined", f"Agent/{agent.name}", {"reason": reason})
        )
        self.quarantine_runs(agent.name, reason)

    def quarantine_runs(self, agent: str, reason: str) -> None:
        assert self.world is not None
        for flight in list(self.world.in_flight.values()):
            if flight.agent == agent:
                self.executor.cancel(flight.run_id, f"agent quarantined: {reason}")

    # --- scheduling ------------------------------------------------------------------------

    def _decide(self, now: datetime) -> list[Decision]:
        world = self.world
        assert world is not None
        views = [_task_view(world, world.tasks[n], now) for n in self._candidates(world, now)]
        if not views:
            return []
        reserved: dict[str, Decimal] = {}
        for flight in world.in_flight.values():
            reserved[flight.agent] = reserved.get(flight.agent, Decimal(0)) + (
                flight.per_run_cap or 0
            )
        agents = {
            a.name: _agent_view(a, reserved.get(a.name, Decimal(0))) for a in world.agents.values()
        }
        mission = MissionView(
            mode=world.mission.mode,
            spent_today=world.mission_spent_today,
            reserved=sum(reserved.values(), Decimal(0)),
            daily_cap=world.mission.budget.daily_usd,
        )
        return [*self._secret_unblocks(), *schedule(views, world.states(), agents, mission, now)]

    def _candidates(self, world: World, now: datetime) -> list[str]:
        """The waiting tasks worth a look this tick, without building a view of all of them.

        A full pass (after a load, a reload, a new day or a quarantine, and at least every
        FULL_PASS_S) looks at every waiting task. Otherwise: tasks whose state moved since the
        last look, the tasks depending on them (their gates may open or close), and, for
        dispatch, the best few ready tasks per agent with a free slot — which is all a tick
        can start. At 10k waiting tasks this is a few ms instead of a third of a second.
        """
        seen = {n: (t.state, t.next_attempt_at) for n, t in world.tasks.items()}
        full = self._full or time.monotonic() - self._last_full > FULL_PASS_S
        if full or self._dependents is None:
            self._dependents = {}
            for t in world.tasks.values():
                for dep in t.depends_on:
                    self._dependents.setdefault(dep, []).append(t.name)
        changed = [n for n, key in seen.items() if self._seen.get(n) != key]
        self._seen = seen
        if full:
            self._full, self._last_full = False, time.monotonic()
            return [n for n, t in world.tasks.items() if t.state in WAITING]
        picked = set(changed)
        # held by budget or by paused agents: spend and room change with every run that ends
        picked.update(
            n
            for n, t in world.tasks.items()
            if t.state == "BLOCKED" and (t.reason or "").startswith(("budget", "paused"))
        )
        for name in changed:
            picked.update(self._dependents.get(name, ()))
        picked.update(self._ready_heads(world, now))
        return [n for n in picked if n in world.tasks and world.tasks[n].state in WAITING]

    def _ready_heads(self, world: World, now: datetime) -> list[str]:
        """The first few INBOX tasks in dispatch order for each agent with room (and for
        tasks that go by capability), enough to fill every free slot."""
        room = {a.name: a.spec.concurrency - a.running for a in world.agents.values()}
        if sum(max(r, 0) for r in room.values()) <= 0:
            return []
        buckets: dict[str | None, list[TaskRec]] = {}
        for t in world.tasks.values():
            if t.state == "INBOX" and (t.next_attempt_at is None or t.next_attempt_at <= now):
                buckets.setdefault(t.spec.agent, []).append(t)
        heads: list[str] = []
        for agent, tasks in buckets.items():
            free = sum(max(r, 0) for r in room.values()) if agent is None else room.get(agent, 0)
            if free <= 0:
                continue
            best = heapq.nsmallest(
                free * 4 + 8, tasks, key=lambda t: (-t.spec.priority, t.created_at, t.name)
            )
            heads.extend(t.name for t in best)
        return heads

    def _secret_unblocks(self) -> list[Decision]:
        """Tasks blocked on a missing secret go back to the queue once mc's environment has it
        (the pure scheduler cannot see the environment; without this they stayed BLOCKED)."""
        assert self.world is not None
        return [
            Unblock(t.name, "secret available")
            for t in self.world.tasks.values()
            if t.state == "BLOCKED"
            and (t.reason or "").startswith("secret:")
            and any(_secrets_resolve(a) for a in self.world.agents.values() if _serves(a, t))
        ]

    def _enact(
        self, batch: WriteBatch, decision: Decision, now: datetime, report: TickReport
    ) -> None:
        world = self.world
        assert world is not None
        match decision:
            case Dispatch(task=name, agent=agent_name):
                if self._dispatch(batch, world.tasks[name], world.agents[agent_name], now):
                    report.dispatched += 1
                else:  # settled without an agent (skipped, failed, blocked): schedule again
                    report.changed += 1  # now, so its dependents do not wait for a new reconcile
                return
            case Block(task=name, reason=reason):
                target, why = "BLOCKED", reason
            case Unblock(task=name, reason=reason):
                target, why = "INBOX", reason
            case AwaitApproval(task=name):
                target, why = "NEEDS_APPROVAL", "approval required before dispatch"
                if not world.approvers:
                    why += "; mission.yaml declares no approvers, so it can never be given"
            case Release(task=name):
                target, why = "INBOX", "approved"
            case Deny(task=name):
                target, why = "FAILED", "denied (by an approver, or by policy)"
            case Complete(task=name):
                target, why = "DONE", "review approved"
            case _:
                assert_never(decision)
        self._move(batch, world.tasks[name], target, why, now)
        report.changed += 1

    def _move(self, batch: WriteBatch, task: TaskRec, target: str, why: str, now: datetime) -> None:
        cause = now.isoformat()
        t = transition(task.name, task.state, target, ACTOR, why, cause)
        batch.add_task(TaskWrite(task.name, t.source, t.target, t.key, ACTOR, why))
        task.state, task.reason = target, why

    def _dispatch(self, batch: WriteBatch, task: TaskRec, agent: AgentRec, now: datetime) -> bool:
        """Launch the task's agent (True), or settle the task without one (False)."""
        world = self.world
        assert world is not None
        prepared = stepflow.prepare(world, task)
        if prepared.skip or prepared.fail:
            self._move(
                batch,
                task,
                "DONE" if prepared.skip else "FAILED",
                prepared.skip or prepared.fail or "",
                now,
            )
            return False
        run_id = "r-" + uuid.uuid4().hex[:16]
        try:
            req = build_request(world, task, agent, run_id, self.paths, now, prepared.prompt)
        except MissingSecret as exc:
            self._move(batch, task, "BLOCKED", f"secret: {exc}", now)
            return False
        t = transition(
            task.name, task.state, "ASSIGNED", ACTOR, f"dispatched to {agent.name}", run_id
        )
        batch.add_task(
            TaskWrite(
                task.name,
                t.source,
                t.target,
                t.key,
                ACTOR,
                t.reason,
                agent=agent.name,
                attempts=task.attempts + 1,
            )
        )
        batch.run_starts.append(
            RunStart(
                run_id,
                task.name,
                task.runs + 1,
                agent.name,
                "local",
                os.getpid(),
                str(req.workspace),
                now,
            )
        )
        task.state, task.agent, task.attempts, task.runs = (
            "ASSIGNED",
            agent.name,
            task.attempts + 1,
            task.runs + 1,
        )
        agent.running += 1
        world.in_flight[run_id] = InFlight(
            run_id, task.name, agent.name, req.attempt, per_run_cap(task, agent)
        )
        self._launches.append(req)
        return True

    def _next_wake(self, now: datetime) -> datetime | None:
        assert self.world is not None
        waits = [
            t.next_attempt_at
            for t in self.world.tasks.values()
            if t.state == "INBOX" and t.next_attempt_at is not None and t.next_attempt_at > now
        ]
        return min(waits) if waits else None

    # --- stopping --------------------------------------------------------------------------

    def stop(self, grace_s: float = 2.0) -> None:
        """Kill every child and record their runs as requeued (they do not count as attempts)."""
        self.stopping = True
        self.executor.shutdown(grace_s)
        self.tick()

    def summary(self) -> dict[str, Any]:
        assert self.world is not None
        counts: dict[str, int] = {}
        for t in self.world.tasks.values():
            counts[t.state] = counts.get(t.state, 0) + 1
        return {
            "tasks": counts,
            "running": len(self.world.in_flight),
            "spent_today": str(self.world.mission_spent_today),
        }


def _task_view(world: World, t: TaskRec, now: datetime) -> TaskView:
    spec = t.spec
    # Most tasks can never be gated; skipping the tally for them keeps a tick cheap at 10k+.
    if t.state == "REVIEW" or not t.gate_free(world):
        g = gate(world, t, now)
        gated, approved, denied = g.gated, g.approved, g.denied
    else:
        gated = approved = denied = False
    return TaskView(
        name=t.name,
        state=t.state,
        reason=t.reason,
        agent=spec.agent,
        requires=t.requires,
        depends_on=t.depends_on,
        priority=spec.priority,
        created_at=t.created_at,
        next_attempt_at=t.next_attempt_at,
        gated=gated,
        approved=approved,
        denied=denied,
    )


def _agent_view(a: AgentRec, reserved: Decimal) -> AgentView:
    return AgentView(
        name=a.name,
        capabilities=frozenset(a.spec.capabilities),
        concurrency=a.spec.concurrency,
        status=a.status,
        running=a.running,
        spent_today=a.spent_today,
        reserved=reserved,
        daily_cap=a.spec.budget.daily_usd,
        per_run_cap=a.spec.budget.per_run_usd,
    )


def _serves(agent: AgentRec, task: TaskRec) -> bool:
    spec = task.spec
    return spec.agent in (None, agent.name) and set(spec.requires) <= set(agent.spec.capabilities)


def _secrets_resolve(agent: AgentRec) -> bool:
    try:
        resolve_env(agent.spec.env, os.environ)
    except MissingSecret:
        return False
    return True
