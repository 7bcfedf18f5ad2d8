"""Issue 15's new-user trial, through the real CLI: what a reviewer sees of the work they
approve, who denied a task, how gates are named, tables at 100 columns, lookups, the hints
`mc` gives, and one money format."""

from __future__ import annotations

from helpers.exec_repo import ExecRepo

LONG = "line of the report\n" * 200  # 3800 characters: more than `mc task` prints
WRITES = f"result(status='done', output={LONG!r}, outputs={{'summary': 'short'}})\n"


def test_a_reviewer_sees_the_output_they_approve(repo: ExecRepo) -> None:
    repo.agent("writer", WRITES)
    repo.task("draft", agent="writer", approval="after")
    repo.commit("a task whose result waits for review")
    assert repo.mc("apply", "--auto-approve").returncode == 0

    text = repo.mc("task", "draft")
    body = repo.mc_json("task", "draft")
    runs = repo.mc_json("runs")

    assert text.returncode == 0, text.stderr
    assert body["state"] == "REVIEW"
    assert "Output (latest run):" in text.stdout and "line of the report" in text.stdout
    assert "(truncated: " in text.stdout and "--json shows it all" in text.stdout
    assert text.stdout.count("line of the report") < 200
    assert '"summary": "short"' in text.stdout
    assert body["output"] == LONG and body["outputs"] == {"summary": "short"}
    assert [(r["task"], r["output"], r["outputs"]) for r in runs] == [
        ("draft", LONG, {"summary": "short"})
    ]


def test_mc_task_names_the_policy_rule_that_denied_a_task(repo: ExecRepo) -> None:
    rule = {"name": "no-prod", "match": {"action": ["dispatch"], "labels": {"env": "prod"}}}
    repo.mission(policy={"rules": [{**rule, "decide": "DENY"}]})
    repo.agent("writer", WRITES)
    spec = {"title": "Deploy", "agent": "writer", "retry": {"max_attempts": 1}}
    repo.write_doc("tasks/deploy.yaml", "Task", "deploy", spec, labels={"env": "prod"})
    repo.commit("a task the policy denies")
    assert repo.mc("apply", "--auto-approve").returncode == 0

    body = repo.mc_json("task", "deploy")

    named = "denied by policy: rule 'no-prod' of mission.yaml decides DENY for its dispatch"
    assert body["denied_by"] == named
    assert named in body["why"]["detail"]


def test_explain_names_the_approval_before_gate(repo: ExecRepo) -> None:
    repo.agent("writer", WRITES)
    repo.task("gated", agent="writer", approval="before")
    repo.commit("a task that waits for an approval")
    assert repo.mc("apply", "--auto-approve").returncode == 0

    explained = repo.mc("explain", "Task/gated")

    assert explained.returncode == 0, explained.stderr
    shown = " ".join(explained.stdout.split())
    gate = "gate: `approval: before` in its spec (risk LOW by default: low risk)"
    assert f"dispatch: risk LOW by default: low risk; {gate}" in shown
    assert f"waiting for approval before dispatch: 0/1 given (nobody yet); {gate}" in shown
