"""The one place engine decisions become writes and commands: scheduler decisions, runs that
started or ended, verdicts of workflow steps -> a WriteBatch, launch requests and cancels.
Engine.tick makes one Enact per batch; every task move here goes through tasks/lifecycle."""

from __future__ import annotations

import os
import random
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import assert_never

from reconciler.engine import workflow_steps
from reconciler.engine.budgets import RunBudget
from reconciler.engine.launch import MissingSecret, Paths, build_request, per_run_cap
from reconciler.engine.mirror import FAILURE_STATUSES, AgentRec, InFlight, TaskRec, World
from reconciler.engine.outcome_rules import Settlement, settle, why_stale
from reconciler.engine.review_rules import rework_verdict
from reconciler.engine.run_bookkeeping import account, keep_drops, remember
from reconciler.engine.scheduler import (
    AwaitApproval,
    Block,
    Complete,
    Decision,
    Deny,
    Dispatch,
    Release,
    Rework,
    Unblock,
)
from reconciler.engine.workflow_steps import SendBack, StepJudgement
from reconciler.runtime.types import LaunchRequest, Outcome
from reconciler.tasks.lifecycle import PRODUCED, TaskState, transition
from specs.money import money_json
from state.records import NewEvent
from state.write_batch import AgentStatusWrite, RunStart, RunStatusWrite, RunUpdate, WriteBatch

S = TaskState
ACTOR = "reconciler"


@dataclass
class Enact:
    """Applies one tick's events to the mirror and collects what they ask for."""

    world: World
    paths: Paths
    now: datetime
    rng: random.Random
    stopping: bool = False
    batch: WriteBatch = field(default_factory=WriteBatch)
    launches: list[LaunchRequest] = field(default_factory=list)
    cancels: list[tuple[str, str]] = field(default_factory=list)  # (run id, why)
    held_agent: bool = False  # an agent was quarantined: its waiting tasks are held now

    # --- scheduler decisions ---------------------------------------------------------------

    def decision(self, decision: Decision) -> bool:
        """Carry out one decision; True when it launched a run."""
        tasks = self.world.tasks
        match decision:
            case Dispatch(task=name, agent=agent, budget=budget):
                return self._dispatch(tasks[name], self.world.agents[agent], budget)
            case Block(task=name, reason=reason):
                target, why = S.BLOCKED, reason
            case Unblock(task=name, reason=reason):
                target, why = S.INBOX, reason
            case AwaitApproval(task=name):
                target, why = S.NEEDS_APPROVAL, "approval required before dispatch"
                if not self.world.approvers:
                    why += "; mission.yaml declares no approvers, so it can never be given"
            case Release(task=name, reason=why):
                target = S.INBOX
            case Deny(task=name):
                target, why = S.FAILED, "denied (by an approver, or by policy)"
            case Complete(task=name):
                target, why = S.DONE, "review approved"
            case Rework(task=name, feedback=feedback, by=by):
                self._rework(tasks[name], feedback, by)
                return False
            case _:
                assert_never(decision)
        self._move(tasks[name], target, why)
        return False

    def _move(self, task: TaskRec, target: TaskState, why: str) -> None:
        t = transition(task.name, task.state, target, ACTOR, why, self.now.isoformat())
        self.batch.add_task(t.write())
        task.state, task.reason = target, why

    def _rework(self, task: TaskRec, feedback: str, by: str) -> None:
        """A reviewer asked for changes: the task goes back to its agent with their words as
        `feedback` (a fresh set of attempts), or fails once its rework rounds are spent."""
        verdict = rework_verdict(task.spec.max_rework, task.rework, feedback, by)
        t = transition(
            task.name, task.state, verdict.target, ACTOR, verdict.reason, self.now.isoformat()
        )
        data = {"round": verdict.round, "feedback": feedback, "by": by, "limit": verdict.limit}
        if verdict.target == S.FAILED:
            self.batch.add_task(t.write())
            self.batch.events.append(
                NewEvent(ACTOR, "task.failed", f"Task/{task.name}", {"reason": verdict.reason})
            )
        else:
            self.batch.add_task(t.write(attempts=0, feedback=feedback, rework=verdict.round))
            task.attempts, task.feedback, task.rework = 0, feedback, verdict.round
            self.batch.events.append(
                NewEvent(ACTOR, "task.changes_requested", f"Task/{task.name}", data)
            )
        task.state, task.reason = verdict.target, verdict.reason

    def _dispatch(self, task: TaskRec, agent: AgentRec, budget: RunBudget) -> bool:
        """Queue the launch of the task's agent (True), or settle the task without one."""
        prepared = workflow_steps.prepare(self.world, task)
        if prepared.skip is not None:
            self._move(task, S.DONE, prepared.skip)
            return False
        if prepared.fail is not None:
            self._move(task, S.FAILED, prepared.fail)
            return False
        run_id = "r-" + uuid.uuid4().hex[:16]
        try:
            req = build_request(
                self.world, task, agent, run_id, self.paths, self.now, prepared.prompt, budget
            )
        except MissingSecret as exc:
            self._move(task, S.BLOCKED, f"secret: {exc}")
            return False
        why = f"dispatched to {agent.name}"
        t = transition(task.name, task.state, S.ASSIGNED, ACTOR, why, run_id)
        self.batch.add_task(t.write(agent=agent.name, attempts=task.attempts + 1))
        self.batch.run_starts.append(
            RunStart(
                run_id,
                task.name,
                task.runs + 1,
                agent.name,
                "local",
                os.getpid(),
                str(req.workspace),
                self.now,
            )
        )
        task.state, task.agent, task.run = S.ASSIGNED, agent.name, run_id
        task.attempts, task.runs = task.attempts + 1, task.runs + 1
        agent.running += 1
        cap = per_run_cap(task, agent)
        flight = InFlight(run_id, task.name, agent.name, req.attempt, cap, budget=budget)
        self.world.in_flight[run_id] = flight
        self.launches.append(req)
        return True

    # --- a run's progress --------------------------------------------------------------------

    def _stale(self, flight: InFlight) -> str | None:
        """Why this run may no longer touch its task; the first time, its process is stopped."""
        if flight.stale is None:
            task = self.world.tasks.get(flight.task)
            state, current = (task.state, task.run) if task else (None, None)
            flight.stale = why_stale(state, current, flight.run_id)
            if flight.stale is not None:
                self.cancels.append((flight.run_id, flight.stale))
        return flight.stale

    def run_started(self, flight: InFlight) -> None:
        """Its process is up: the run row gets its pid, the task goes IN_PROGRESS."""
        if flight.started or not flight.pid:  # pid 0: never started; its outcome says why
            return
        flight.started = True
        self.batch.run_updates.append(
            RunUpdate(flight.run_id, "RUNNING", pid=flight.pid, proc_start=flight.proc_start)
        )
        if self._stale(flight) is None:
            self._task_started(self.world.tasks[flight.task], flight.run_id)

    def _task_started(self, task: TaskRec, run_id: str) -> None:
        if task.state == S.ASSIGNED:
            t = transition(task.name, task.state, S.IN_PROGRESS, ACTOR, "agent started", run_id)
            self.batch.add_task(t.write())
            task.state, task.reason = S.IN_PROGRESS, "agent started"

    def run_finished(self, outcome: Outcome) -> None:
        flight = self.world.in_flight.pop(outcome.run_id, None)
        if flight is None:
            return
        agent = self.world.agents.get(flight.agent)
        if agent is not None:
            agent.running = max(agent.running - 1, 0)
        stale = self._stale(flight)
        task = self.world.tasks.get(flight.task)
        if stale is not None or task is None:
            self._record_run_end(outcome, flight, "canceled", stale)
            account(self.world, self.batch, outcome, flight, self.now)
            return
        task.run = None
        ran = outcome.status not in ("abandoned", "canceled") and flight.pid != 0
        if ran:  # a run that ended before it was seen running (recovered) still ran
            self._task_started(task, outcome.run_id)
        judged = self._judge(task, agent, outcome)
        self._settle_task(task, outcome, judged.settlement)
        if judged.send_back is not None:
            self._send_back(task, judged.send_back, outcome.run_id)
        if judged.escalation is not None:
            self._escalation(task, judged.escalation)
        self._record_run_end(outcome, flight, judged.settlement.error_class)
        account(self.world, self.batch, outcome, flight, self.now)
        remember(self.world, self.batch, outcome, task, flight.agent)
        keep_drops(self.world, self.batch, outcome, task, self.now)
        if agent is not None and outcome.status not in ("canceled", "abandoned"):
            self._count_for_breaker(agent, outcome, judged.settlement)

    def _judge(self, task: TaskRec, agent: AgentRec | None, outcome: Outcome) -> StepJudgement:
        """The outcome rules, then the workflow's. A quarantine stops the agent, not its work:
        the run is requeued, the task not canceled; so does stopping mc."""
        requeue = self.stopping or (
            outcome.status == "canceled" and agent is not None and agent.status == "quarantined"
        )
        result = settle(
            task.spec, task.attempts, task.abandoned, outcome, self.now, self.rng, requeue
        )
        if self.stopping:
            return StepJudgement(result)
        if requeue:
            result = replace(result, reason=f"requeued: {outcome.error}")
        return workflow_steps.judge(self.world, task, outcome, result)

    def _settle_task(self, task: TaskRec, outcome: Outcome, result: Settlement) -> None:
        produced = result.target in PRODUCED
        output = outcome.output if produced else None
        outputs = dict(outcome.outputs) if produced else None
        if task.step is not None and result.error_class == "verdict":
            task.rework += 1
        t = transition(task.name, task.state, result.target, ACTOR, result.reason, outcome.run_id)
        self.batch.add_task(
            t.write(
                attempts=result.attempts,
                abandoned=result.abandoned,
                next_attempt_at=result.next_attempt_at,
                output=output,
                outputs=outputs,
                rework=task.rework if task.step else None,
            )
        )
        task.state, task.reason = result.target, result.reason
        if result.target == S.REVIEW:
            task.review_since = self.now
        task.attempts, task.abandoned = result.attempts, result.abandoned
        task.next_attempt_at = result.next_attempt_at
        if produced:
            task.output, task.outputs = output, outputs
        if result.target == S.FAILED:
            self.batch.events.append(
                NewEvent(ACTOR, "task.failed", f"Task/{task.name}", {"reason": result.reason})
            )

    def _send_back(self, verifier: TaskRec, back: SendBack, run_id: str) -> None:
        verified = self.world.tasks[back.verified]
        t = transition(verified.name, verified.state, S.INBOX, ACTOR, back.reason, run_id)
        self.batch.add_task(t.write(attempts=0, feedback=back.feedback))
        verified.state, verified.reason, verified.attempts = S.INBOX, back.reason, 0
        verified.feedback = back.feedback
        data = {"verifier": verifier.name, "feedback": back.feedback, "round": back.round}
        self.batch.events.append(NewEvent(ACTOR, "workflow.rework", f"Task/{verified.name}", data))

    def _escalation(self, task: TaskRec, why: str) -> None:
        assert task.step is not None
        data = {"run": task.step.run, "step": task.step.step.id, "reason": why}
        self.batch.events.append(NewEvent(ACTOR, "escalation", f"Task/{task.name}", data))

    def _record_run_end(
        self,
        outcome: Outcome,
        flight: InFlight,
        error_class: str | None,
        canceled: str | None = None,
    ) -> None:
        """The run row's end and its event; `canceled`: its task no longer wanted it."""
        status = "canceled" if canceled is not None else outcome.status
        error = canceled if canceled is not None else outcome.error
        self.batch.run_updates.append(
            RunUpdate(
                outcome.run_id,
                "ENDED",
                pid=flight.pid or None,
                proc_start=flight.proc_start or None,
                ended_at=self.now,
                exit_code=outcome.exit_code,
                status=status,
                error_class=error_class,
                error=error,
                cost_usd=outcome.cost_usd,
                tokens=outcome.tokens,
            )
        )
        data = {
            "task": flight.task,
            "agent": flight.agent,
            "status": status,
            "error": error,
            "cost_usd": money_json(outcome.cost_usd),
        }
        self.batch.events.append(NewEvent(ACTOR, "run.ended", f"Run/{outcome.run_id}", data))

    # --- the loop breaker ------------------------------------------------------------------

    def _count_for_breaker(self, agent: AgentRec, outcome: Outcome, result: Settlement) -> None:
        """A verifier's send-back is a verdict on another step, not a failure of the verifier."""
        if result.error_class == "verdict":
            return
        agent.recent.append(outcome.status in FAILURE_STATUSES)
        if agent.status != "active" or not agent.breaker_tripped():
            return
        reason = f"loop breaker: {sum(agent.recent)} of its last {len(agent.recent)} runs failed"
        agent.status, agent.reason = "quarantined", reason
        self.held_agent = True
        self.batch.agents.append(AgentStatusWrite(agent.name, "quarantined", reason, agent.digest))
        self.batch.events.append(
            NewEvent(ACTOR, "agent.quarantined", f"Agent/{agent.name}", {"reason": reason})
        )
        for flight in self.world.in_flight.values():
            if flight.agent == agent.name:
                self.cancels.append((flight.run_id, f"agent quarantined: {reason}"))

    # --- workflow runs -----------------------------------------------------------------------

    def workflow_runs(self) -> None:
        """Each workflow run's status, when its steps moved it."""
        for change in workflow_steps.run_status_changes(self.world):
            self.world.runs[change.run].status = change.status
            self.batch.workflow_runs.append(
                RunStatusWrite(change.run, change.status, change.outputs)
            )
            self.batch.events.append(
                NewEvent(
                    ACTOR,
                    f"workflow_run.{change.status.lower()}",
                    f"WorkflowRun/{change.run}",
                    {"from": change.previous},
                )
            )
