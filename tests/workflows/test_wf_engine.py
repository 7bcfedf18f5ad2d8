"""The workflow engine end to end: real repos, real DuckDB, real agent processes.

Each test declares workflows and runs, commits them and drives them with `apply_now` (what
`mc apply --auto-approve` calls), then reads what happened: step task rows, agent runs,
events, the task.json each agent was given and the marks agents wrote while running.
"""

from __future__ import annotations

import pytest
from wf_harness import WfRepo, step

pytestmark = pytest.mark.timeout(60)


def test_independent_steps_run_at_the_same_time_as_tasks_named_run_dot_step(
    repo: WfRepo,
) -> None:
    repo.workflow(
        "dev",
        [
            step("plan", prompt="plan it"),
            step("backend", depends_on=["plan"], prompt="SLOW backend"),
            step("frontend", depends_on=["plan"], prompt="SLOW frontend"),
        ],
    )
    repo.run("r1", "dev")
    repo.commit()

    done = repo.apply()

    assert done.converged is not None and done.converged.summary["tasks"] == {"DONE": 3}
    with repo.state() as state:
        rows = {t.name: (t.workflow_run, t.step) for t in state.reader.tasks()}
    assert rows == {
        "r1.plan": ("r1", "plan"),
        "r1.backend": ("r1", "backend"),
        "r1.frontend": ("r1", "frontend"),
    }
    assert sorted(r.task for r in repo.all_runs()) == ["r1.backend", "r1.frontend", "r1.plan"]
    plan_end = repo.mark("r1.plan", "end")
    back = (repo.mark("r1.backend", "start"), repo.mark("r1.backend", "end"))
    front = (repo.mark("r1.frontend", "start"), repo.mark("r1.frontend", "end"))
    assert plan_end and back[0] and back[1] and front[0] and front[1]
    # both waited for plan, and each started before the other ended: they overlapped
    assert back[0]["t"] >= plan_end["t"] and front[0]["t"] >= plan_end["t"]
    assert back[0]["t"] < front[1]["t"] and front[0]["t"] < back[1]["t"]
    assert back[0]["run"] != front[0]["run"]
    assert repo.run_row("r1").status == "SUCCEEDED"


def test_outputs_inputs_and_the_run_name_flow_into_downstream_prompts(repo: WfRepo) -> None:
    repo.workflow(
        "dev",
        [
            step("plan", prompt="Plan: {{ inputs.goal }} ({{ inputs.size }})"),
            step(
                "implement",
                depends_on=["plan"],
                prompt=(
                    "got [{{ steps.plan.output }}] key={{ steps.plan.outputs.summary }}"
                    " goal={{ inputs.goal }} run={{ run.name }} wf={{ run.workflow }}"
                    " size={{ run.inputs.size }}"
                ),
            ),
        ],
        inputs={"goal": {"required": True}, "size": {"default": "small"}},
    )
    repo.run("add-login", "dev", goal="Add a login page")
    repo.commit()

    repo.apply()

    plan_prompt = "Plan: Add a login page (small)"
    assert repo.task_json("add-login", "plan")["prompt"] == plan_prompt
    seen = repo.task_json("add-login", "implement")
    expected = (
        f"got [{plan_prompt}] key=sum of add-login.plan goal=Add a login page"
        " run=add-login wf=dev size=small"
    )
    assert seen["prompt"] == expected
    assert seen["task"] == "add-login.implement"
    assert seen["workflow"] == {
        "run": "add-login",
        "workflow": "dev",
        "step": "implement",
        "inputs": {"goal": "Add a login page", "size": "small"},
        "rework": 0,
    }
    assert seen["upstream"]["add-login.plan"]["output"] == plan_prompt
    assert seen["feedback"] is None
    # the agent echoes its prompt as its output; the run's outputs are its final steps'
    assert repo.step_row("add-login", "implement").output == expected
    run = repo.run_row("add-login")
    assert run.status == "SUCCEEDED"
    assert run.inputs == {"goal": "Add a login page", "size": "small"}
    assert run.outputs == {
        "implement": {"output": expected, "outputs": {"summary": "sum of add-login.implement"}}
    }


def test_a_false_when_skips_the_step_and_its_dependents_still_run(repo: WfRepo) -> None:
    repo.workflow(
        "dev",
        [
            step("plan"),
            step("docs", depends_on=["plan"], when="inputs.size == 'big'", prompt="docs"),
            step(
                "publish",
                depends_on=["docs"],
                prompt="publish {% if steps.docs is defined %}{{ steps.docs.output }}"
                "{% else %}without docs{% endif %}",
            ),
        ],
        inputs={"size": {"default": "small", "enum": ["small", "big"]}},
    )
    repo.run("small", "dev")
    repo.commit()

    repo.apply()  # one apply carries the run past the skipped step to the end

    skipped = repo.step_row("small", "docs")
    assert skipped.state == "DONE"
    assert skipped.reason == "skipped: `when: inputs.size == 'big'` is false"
    assert repo.runs_of("small", "docs") == []  # no agent was started for it
    assert repo.steps("small") == {"plan": "DONE", "docs": "DONE", "publish": "DONE"}
    assert repo.task_json("small", "publish")["prompt"] == "publish without docs"
    assert repo.run_row("small").status == "SUCCEEDED"

    repo.run("big", "dev", size="big")
    repo.commit()
    repo.apply()

    assert len(repo.runs_of("big", "docs")) == 1
    assert repo.step_row("big", "docs").reason == "done"
    assert repo.task_json("big", "publish")["prompt"] == "publish docs"
    assert repo.run_row("big").status == "SUCCEEDED"


def test_a_verifier_sends_its_step_back_once_with_feedback_and_the_run_succeeds(
    repo: WfRepo,
) -> None:
    repo.workflow(
        "dev",
        [
            step("implement", prompt="build it{% if feedback %}; fix: {{ feedback }}{% endif %}"),
            step(
                "verify",
                agent="verifier",
                depends_on=["implement"],
                verifies="implement",
                prompt="REJECT=1",
            ),
        ],
    )
    repo.run("r1", "dev")
    repo.commit()

    repo.apply()

    first, second = (repo.task_json("r1", "implement", i) for i in (0, 1))
    assert (first["feedback"], first["prompt"]) == (None, "build it")
    assert second["feedback"] == "add tests please (round 1)"
    assert second["prompt"] == "build it; fix: add tests please (round 1)"
    assert len(repo.runs_of("r1", "verify")) == 2
    [rework] = repo.events("workflow.rework")
    assert rework.subject == "Task/r1.implement"
    assert rework.data == {
        "verifier": "r1.verify",
        "feedback": "add tests please (round 1)",
        "round": 1,
    }
    assert repo.step_row("r1", "verify").rework == 1
    assert repo.steps("r1") == {"implement": "DONE", "verify": "DONE"}
    assert repo.run_row("r1").status == "SUCCEEDED"
    assert repo.events("escalation") == []


def test_when_rework_is_exhausted_the_verifier_escalates_and_the_run_is_blocked(
    repo: WfRepo,
) -> None:
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

    verify = repo.step_row("r1", "verify")
    assert verify.state == "BLOCKED"
    assert verify.reason == "escalated: rework limit (1) reached: add tests please (round 2)"
    assert len(repo.runs_of("r1", "implement")) == 2  # the first try and one rework
    assert len(repo.events("workflow.rework")) == 1
    [escalation] = repo.events("escalation")
    assert escalation.subject == "Task/r1.verify"
    assert escalation.data == {"run": "r1", "step": "verify", "reason": verify.reason}
    assert repo.run_row("r1").status == "BLOCKED"
    assert [e.subject for e in repo.events("workflow_run.blocked")] == ["WorkflowRun/r1"]


@pytest.mark.parametrize(
    ("on_failure", "build", "after", "run_status"),
    [
        ("escalate", ("BLOCKED", "escalated: the build is broken"), "INBOX", "BLOCKED"),
        ("fail", ("FAILED", "failed: the build is broken"), "BLOCKED", "FAILED"),
        ("continue", ("FAILED", "failed: the build is broken"), "DONE", "SUCCEEDED"),
    ],
)
def test_on_failure_decides_what_a_failed_step_means_for_the_run(
    repo: WfRepo,
    on_failure: str,
    build: tuple[str, str],
    after: str,
    run_status: str,
) -> None:
    steps = [step("build", agent="flaky"), step("after", depends_on=["build"])]
    if on_failure != "escalate":  # escalate is the default: leave it out
        steps[0]["on_failure"] = on_failure
    repo.workflow("dev", steps)
    repo.run("r1", "dev")
    repo.commit()

    repo.apply()

    row = repo.step_row("r1", "build")
    assert (row.state, row.reason) == build
    assert repo.step_row("r1", "after").state == after
    assert len(repo.runs_of("r1", "after")) == (1 if after == "DONE" else 0)
    assert repo.run_row("r1").status == run_status
    escalations = [(e.subject, e.data["reason"]) for e in repo.events("escalation")]
    if on_failure == "escalate":
        assert escalations == [("Task/r1.build", "escalated: the build is broken")]
    else:
        assert escalations == []
        assert [e.subject for e in repo.events("task.failed")] == ["Task/r1.build"]
    if after == "BLOCKED":
        assert repo.step_row("r1", "after").reason == "dependency: r1.build is FAILED"


def test_an_undefined_variable_at_run_time_fails_the_step_naming_the_variable(
    repo: WfRepo,
) -> None:
    """Static checks cannot know an upstream step's output keys: the step fails when it
    would start, permanently, without running its agent (README: "fails the step
    permanently at run time with the variable named") - even under on_failure: escalate."""
    repo.workflow(
        "dev",
        [
            step("plan"),
            step("implement", depends_on=["plan"], prompt="{{ steps.plan.outputs.missing_key }}"),
            step("docs", depends_on=["plan"], when="steps.plan.outputs.wants_docs"),
            step("ship", depends_on=["implement"]),
        ],
    )
    repo.run("r1", "dev")
    repo.commit()

    repo.apply()

    implement = repo.step_row("r1", "implement")
    assert implement.state == "FAILED"
    assert implement.reason == (
        "failed: template variable undefined at run time:"
        " 'dict object' has no attribute 'missing_key'"
    )
    docs = repo.step_row("r1", "docs")
    assert docs.state == "FAILED"
    assert docs.reason is not None and "`when` variable undefined" in docs.reason
    assert "'wants_docs'" in docs.reason
    assert repo.runs_of("r1", "implement") == [] and repo.runs_of("r1", "docs") == []
    assert repo.step_row("r1", "ship").state == "BLOCKED"  # in this same apply
    assert repo.run_row("r1").status == "FAILED"
    assert repo.events("escalation") == []  # a template failure is not escalated


def test_applying_again_never_reruns_a_finished_step(repo: WfRepo) -> None:
    repo.workflow(
        "dev",
        [
            step("plan"),
            step("build", agent="flaky", depends_on=["plan"], on_failure="fail"),
            step("verify", agent="verifier", depends_on=["plan"], verifies="plan"),
        ],
    )
    repo.run("r1", "dev")
    repo.commit()
    repo.apply()
    before = sorted((r.id, r.task, r.status) for r in repo.all_runs())
    states = repo.steps("r1")
    assert states == {"plan": "DONE", "build": "FAILED", "verify": "DONE"}

    again = repo.apply()
    repo.workflow("other", [step("x")])
    repo.commit("an unrelated workflow")
    third = repo.apply()

    assert again.result is None and not again.plan.actions
    assert [(a.change.kind, a.change.name) for a in third.plan.actions] == [("Workflow", "other")]
    assert sorted((r.id, r.task, r.status) for r in repo.all_runs()) == before
    assert repo.steps("r1") == states
    assert repo.run_row("r1").status == "FAILED"
