"""Workflow runs changed through git and by people: pinned definitions, delete (cancel),
replace on changed inputs, `mc retry` and the GitOps retry (`spec.retry_nonce`)."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest
from helpers.sandboxed import run_processes
from wf_harness import MC, WfRepo, flat, step, wait_for

pytestmark = pytest.mark.timeout(60)


def transitions(repo: WfRepo, task: str) -> list[tuple[str, str]]:
    return [
        (e.data["from"], e.data["to"])
        for e in repo.events("task.transition")
        if e.subject == f"Task/{task}"
    ]


def test_editing_a_workflow_never_changes_a_run_already_started(repo: WfRepo) -> None:
    repo.workflow(
        "dev",
        [
            step("gate", agent="flaky", on_failure="fail"),
            step("report", depends_on=["gate"], prompt="old report on {{ inputs.goal }}"),
        ],
        inputs={"goal": {}},
    )
    repo.run("r1", "dev", goal="login")
    repo.commit()
    repo.apply()
    assert repo.steps("r1") == {"gate": "FAILED", "report": "BLOCKED"}
    pinned = repo.run_row("r1").workflow_digest

    repo.replace_in("workflows/dev.yaml", "old report", "new report")
    repo.run("r1", "dev", nonce=1, goal="login")  # and retry it, in the same commit
    repo.flag("r1.gate")
    repo.commit("reword the report; retry r1")
    done = repo.apply()

    changed = sorted((a.change.kind, a.change.name) for a in done.plan.actions)
    assert changed == [("Workflow", "dev"), ("WorkflowRun", "r1")]
    assert repo.steps("r1") == {"gate": "DONE", "report": "DONE"}
    assert repo.task_json("r1", "report")["prompt"] == "old report on login"
    status = repo.mc_json("run-status", "r1")
    assert (status["workflow_digest"], status["status"]) == (pinned, "SUCCEEDED")

    repo.run("r2", "dev", goal="search")
    repo.flag("r2.gate")
    repo.commit()
    repo.apply()

    assert repo.task_json("r2", "report")["prompt"] == "new report on search"
    assert repo.run_row("r2").workflow_digest not in (pinned, None)
    assert repo.run_row("r1").workflow_digest == pinned


def test_deleting_a_run_file_cancels_the_run_and_stops_its_running_step(repo: WfRepo) -> None:
    """`mc apply` is killed while a step's agent runs (its sandbox dies with it: nothing is
    left running); the run file is then deleted. The next apply plans the delete and cancels
    the step."""
    repo.workflow("dev", [step("plan"), step("wait", agent="waiter", depends_on=["plan"])])
    repo.run("r1", "dev")
    repo.commit()
    apply = subprocess.Popen(
        [*MC, "-C", str(repo.root), "apply", "--auto-approve"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(lambda: repo.mark("r1.wait", "start") is not None, 20, "the waiting step")
        time.sleep(0.4)  # the engine records the run's pid 0.2 s after it started
    finally:
        apply.send_signal(signal.SIGKILL)
        apply.wait(10)
    start = repo.mark("r1.wait", "start")
    assert start is not None
    run_id = start["run"]
    try:
        wait_for(lambda: not run_processes(run_id), 3, "the sandbox to die with its mc")
        assert repo.step_row("r1", "wait").state in ("ASSIGNED", "IN_PROGRESS")
        repo.remove("runs/r1.yaml")
        repo.commit("drop r1")

        plan = repo.mc("plan")
        assert "- WorkflowRun/r1" in flat(plan.stdout)
        proc = repo.mc("apply", "--auto-approve")

        assert proc.returncode == 0, proc.stderr
    finally:
        for pid in run_processes(run_id):
            os.kill(pid, signal.SIGKILL)
    assert repo.steps("r1") == {"plan": "DONE", "wait": "CANCELED"}
    assert repo.step_row("r1", "wait").reason == "run deleted from git"
    assert transitions(repo, "r1.wait")[-1][1] == "CANCELED"
    assert repo.run_row("r1").status == "CANCELED"
    [run] = repo.runs_of("r1", "wait")
    assert run.ended_at is not None
    # git no longer asks for r1: a person cannot revive it behind git's back
    retry = repo.mc("retry", "r1")
    assert retry.returncode == 1
    assert "run r1 was canceled (deleted from git)" in retry.stderr


def test_deleting_a_blocked_run_cancels_its_unfinished_steps_and_keeps_done_ones(
    repo: WfRepo,
) -> None:
    repo.workflow(
        "dev",
        [
            step("plan"),
            step("build", agent="flaky", depends_on=["plan"]),
            step("x", depends_on=["build"]),
        ],
    )
    repo.run("r1", "dev")
    repo.commit()
    repo.apply()
    assert repo.steps("r1") == {"plan": "DONE", "build": "BLOCKED", "x": "INBOX"}

    repo.remove("runs/r1.yaml")
    repo.commit()
    done = repo.apply()

    assert [(a.change.kind, a.change.name) for a in done.plan.actions] == [("WorkflowRun", "r1")]
    assert repo.steps("r1") == {"plan": "DONE", "build": "CANCELED", "x": "CANCELED"}
    assert repo.run_row("r1").status == "CANCELED"
    assert len(repo.all_runs()) == 2  # nothing ran because of the delete


def test_changing_a_started_runs_inputs_replaces_it(repo: WfRepo) -> None:
    repo.workflow(
        "dev",
        [
            step("build", agent="flaky"),
            step("report", depends_on=["build"], prompt="report on {{ inputs.goal }}"),
        ],
        inputs={"goal": {}},
    )
    repo.run("r1", "dev", goal="one")
    repo.commit()
    repo.apply()
    assert repo.steps("r1") == {"build": "BLOCKED", "report": "INBOX"}  # escalated

    repo.run("r1", "dev", goal="two")
    repo.flag("r1.build")
    repo.commit("new goal")
    plan = repo.mc("plan")
    as_json = repo.mc_json("plan")

    text = flat(plan.stdout)
    assert "-/+ WorkflowRun/r1 (replace: the started run is canceled and run anew)" in text
    assert '~ spec.inputs.goal: "one" → "two"' in text
    [action] = as_json["actions"]
    assert (action["action"], action["kind"], action["replace"]) == ("update", "WorkflowRun", True)
    assert [c["path"] for c in action["changes"]] == ["spec.inputs.goal"]

    repo.apply()

    assert repo.steps("r1") == {"build": "DONE", "report": "DONE"}
    assert repo.task_json("r1", "report")["prompt"] == "report on two"
    run = repo.run_row("r1")
    assert (run.status, run.inputs) == ("SUCCEEDED", {"goal": "two"})
    assert [e.subject for e in repo.events("workflow_run.replaced")] == ["WorkflowRun/r1"]
    assert transitions(repo, "r1.build")[-5:] == [
        ("BLOCKED", "CANCELED"),
        ("CANCELED", "INBOX"),
        ("INBOX", "ASSIGNED"),
        ("ASSIGNED", "IN_PROGRESS"),
        ("IN_PROGRESS", "DONE"),
    ]


def test_mc_retry_requeues_a_failed_step_and_the_next_apply_finishes_it(repo: WfRepo) -> None:
    repo.workflow(
        "dev",
        [step("build", agent="flaky", on_failure="fail"), step("ship", depends_on=["build"])],
    )
    repo.run("r1", "dev")
    repo.commit()
    repo.apply()
    assert repo.steps("r1") == {"build": "FAILED", "ship": "BLOCKED"}
    assert repo.run_row("r1").status == "FAILED"

    wrong = repo.mc("retry", "r1.deploy")
    retry = repo.mc("retry", "r1.build")

    assert wrong.returncode == 1
    assert "run r1 has no step 'deploy' (steps: build, ship)" in wrong.stderr
    assert retry.returncode == 0, retry.stderr
    assert "Requeued r1.build." in retry.stdout
    row = repo.step_row("r1", "build")
    assert (row.state, row.reason, row.attempts) == ("INBOX", "retry requested (mc retry)", 0)
    [event] = repo.events("retry.requested")
    assert (event.subject, event.data) == ("WorkflowRun/r1", {"steps": ["r1.build"]})
    assert event.actor.startswith("cli:")
    assert repo.run_row("r1").status == "RUNNING"

    repo.flag("r1.build")  # the agent succeeds now
    proc = repo.mc("apply", "--auto-approve")

    assert proc.returncode == 0, proc.stderr
    assert repo.steps("r1") == {"build": "DONE", "ship": "DONE"}
    assert repo.run_row("r1").status == "SUCCEEDED"
    assert len(repo.runs_of("r1", "build")) == 2
    again = repo.mc("retry", "r1.build")
    assert again.returncode == 1
    assert "nothing to retry in r1.build: no step is FAILED or BLOCKED" in again.stderr


def test_bumping_retry_nonce_requeues_blocked_and_failed_steps(repo: WfRepo) -> None:
    repo.workflow(
        "dev",
        [
            step("build", agent="flaky"),
            step("lint", agent="flaky", on_failure="fail"),
            step("ship", depends_on=["build", "lint"]),
        ],
    )
    repo.run("r1", "dev")
    repo.commit()
    repo.apply()
    assert repo.steps("r1") == {"build": "BLOCKED", "lint": "FAILED", "ship": "BLOCKED"}

    repo.run("r1", "dev", nonce=1)
    repo.flag("r1.build")
    repo.flag("r1.lint")
    repo.commit("retry r1")
    [action] = repo.mc_json("plan")["actions"]
    plan = flat(repo.mc("plan").stdout)

    assert (action["action"], action["replace"]) == ("update", False)
    assert [(c["path"], c["old"], c["new"]) for c in action["changes"]] == [
        ("spec.retry_nonce", 0, 1)
    ]
    assert "~ WorkflowRun/r1" in plan and "-/+" not in plan

    repo.apply()

    assert repo.steps("r1") == {"build": "DONE", "lint": "DONE", "ship": "DONE"}
    assert repo.step_row("r1", "build").attempts == 1  # attempts start over
    run = repo.run_row("r1")
    assert (run.status, run.retry_nonce) == ("SUCCEEDED", 1)
    reasons = {e.data["reason"] for e in repo.events("task.transition") if e.data["to"] == "INBOX"}
    assert "retry requested (spec.retry_nonce)" in reasons


def test_a_gitops_retry_gives_an_escalated_verifier_its_rework_rounds_back(
    repo: WfRepo,
) -> None:
    """Like `mc retry`, which resets rework: otherwise the retried verifier could only
    escalate again at its first rejection, without sending the work back once."""
    repo.workflow(
        "dev",
        [
            step("implement"),
            step(
                "verify",
                agent="verifier",
                depends_on=["implement"],
                verifies="implement",
                max_rework=1,
                prompt="REJECT=9",
            ),
        ],
    )
    repo.run("r1", "dev")
    repo.commit()
    repo.apply()
    assert repo.step_row("r1", "verify").state == "BLOCKED"
    assert len(repo.events("workflow.rework")) == 1

    repo.run("r1", "dev", nonce=1)
    repo.commit("retry")
    repo.apply()

    assert len(repo.events("workflow.rework")) == 2
    assert len(repo.runs_of("r1", "implement")) == 3
    assert len(repo.events("escalation")) == 2
    assert repo.run_row("r1").status == "BLOCKED"


def test_a_nonce_bumped_on_a_finished_run_leaves_its_status_alone(repo: WfRepo) -> None:
    repo.workflow("dev", [step("one")])
    repo.run("r1", "dev")
    repo.commit()
    repo.apply()
    assert repo.run_row("r1").status == "SUCCEEDED"

    repo.run("r1", "dev", nonce=1)
    repo.commit("nothing to retry")
    done = repo.apply()

    assert done.result is not None and len(done.result.applied) == 1
    run = repo.run_row("r1")
    assert (run.status, run.retry_nonce) == ("SUCCEEDED", 1)
    assert len(repo.all_runs()) == 1
