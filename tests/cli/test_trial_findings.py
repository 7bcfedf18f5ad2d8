"""Issue 15's new-user trial, through the real CLI: what a reviewer sees of the work they
approve, who denied a task, how gates are named, tables at 100 columns, lookups, the hints
`mc` gives, and one money format."""

from __future__ import annotations

import signal

from helpers.exec_repo import ExecRepo
from helpers.mc import reap
from helpers.reads import stop
from helpers.serve import served
from helpers.waiting import wait_until

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


SLOW = """
import time
(OUT / "a-report-with-a-rather-long-file-name.txt").write_text("a report")
mark(Path({started!r}))
deadline = time.monotonic() + 60
while not Path({release!r}).exists() and time.monotonic() < deadline:
    time.sleep(0.05)
result(status="done", output="slow done")
"""
NARROW = {"COLUMNS": "100"}


def test_nothing_is_cut_at_100_columns_and_events_read_as_text(repo: ExecRepo) -> None:
    started, release = repo.scratch / "slow.started", repo.scratch / "slow.release"
    repo.agent(
        "a-slow-writer-agent",
        SLOW.format(started=str(started), release=str(release)),
        concurrency=1,
        timeout="2m",
    )
    repo.task("a-long-running-task-name", agent="a-slow-writer-agent")
    repo.task("waits-behind-the-long-one", agent="a-slow-writer-agent", priority=-1)
    repo.commit("one slow agent, two tasks")
    apply = repo.mc_background("apply", "--auto-approve")
    try:
        wait_until(started.exists, 60, "the slow agent to start")
        tasks = repo.mc("tasks", env=NARROW)
        run_id = repo.mc_json("runs")[0]["id"]
    finally:
        release.write_text("go")
        stop(apply)
        reap(apply)
    drops = repo.mc("drops", "a-long-running-task-name", env=NARROW)
    events = repo.mc("events", "--limit", "100", env=NARROW)
    task = repo.mc("task", "a-long-running-task-name", env=NARROW)
    [stored] = [d["file"] for d in repo.mc_json("drops", "a-long-running-task-name")]

    assert tasks.returncode == 0, tasks.stderr
    assert run_id in tasks.stdout  # whole, on one line
    busy = "capacity: every agent that could take it is busy (a-slow-writer-agent 1/1)"
    lines = tasks.stdout.splitlines()
    why = lines.index(next(line for line in lines if "capacity:" in line))
    assert " ".join(" ".join(lines[why : why + 2]).split()) == busy
    assert all(len(line) <= 100 for line in lines), tasks.stdout
    assert stored in drops.stdout and "a-report-with-a-rather-long-file-name.txt" in drops.stdout
    assert "INBOX → ASSIGNED: dispatched to a-slow-writer-agent" in events.stdout
    assert "done · by a-slow-writer-agent" in events.stdout
    assert '{"' not in events.stdout and '{"' not in task.stdout
    assert "ASSIGNED → IN_PROGRESS: agent started" in task.stdout


def test_lookups_take_a_bare_task_name_and_refuse_unknown_names(repo: ExecRepo) -> None:
    repo.agent("writer", WRITES)
    repo.task("flaky2", agent="writer")
    repo.commit("one task")
    assert repo.mc("apply", "--auto-approve").returncode == 0

    for given in ("flaky2", "task/flaky2", "TASK/flaky2", "Task/flaky2"):
        explained = repo.mc("explain", given)
        assert explained.returncode == 0, (given, explained.stderr)
        assert "Task/flaky2: no change planned" in explained.stdout
        assert "why not running: done" in explained.stdout
    unknown = repo.mc("explain", "writer2")
    assert unknown.returncode == 1
    assert "a bare name means a task" in unknown.stderr and "Agent/writer2" in unknown.stderr

    bogus = repo.mc("tasks", "--state", "bogus")
    assert bogus.returncode == 2
    assert "INBOX" in bogus.stderr and "CANCELED" in bogus.stderr
    assert repo.mc("tasks", "--state", "done").returncode == 0
    for args in (("runs", "nope"), ("drops", "nope"), ("task", "nope")):
        done = repo.mc(*args)
        assert (done.returncode, done.stdout) == (1, ""), (args, done)
        assert "no task 'nope' (see `mc tasks`)" in done.stderr and "Traceback" not in done.stderr
    assert repo.mc_json("runs", "flaky2")[0]["task"] == "flaky2"


def test_logs_of_a_silent_agent_say_nothing_was_captured(repo: ExecRepo) -> None:
    repo.agent("silent", WRITES)
    repo.agent("talker", "print('hello from the agent')\n" + WRITES)
    repo.task("quiet", agent="silent")
    repo.task("loud", agent="talker")
    repo.commit("a silent agent and a talking one")
    assert repo.mc("apply", "--auto-approve").returncode == 0

    quiet, loud = repo.mc("logs", "quiet"), repo.mc("logs", "loud")

    assert (quiet.returncode, quiet.stdout) == (0, "")
    assert "(no output captured)" in quiet.stderr
    assert "hello from the agent" in loud.stdout and "no output" not in loud.stderr


RETRY_LATER = 'result(status="retry", error="the service is down")\n'


def test_hints_say_what_moves_a_task_and_do_not_repeat_themselves(repo: ExecRepo) -> None:
    repo.agent("writer", WRITES)
    repo.agent("down", RETRY_LATER)
    repo.task("ready-one", agent="writer")
    repo.task(
        "later",
        agent="down",
        retry={"max_attempts": 3, "initial_interval": "1h", "max_interval": "2h"},
    )
    repo.write_doc(
        "workflows/wf.yaml", "Workflow", "wf", {"steps": [{"id": "s", "agent": "writer"}]}
    )
    repo.commit("a task that can run, one that retries in an hour, a workflow")
    assert repo.mc("apply", "--auto-approve", "--no-wait").returncode == 0

    idle = repo.mc_json("task", "ready-one")["why"]
    assert (idle["category"], idle["detail"]) == (
        "ready",
        "runs when `mc apply` or `mc serve` drives the mission (agent writer is free)",
    )

    apply = repo.mc_background("apply", "--auto-approve")
    try:
        wait_until(
            lambda: repo.mc_json("task", "later")["why"]["category"] == "backoff",
            60,
            "the task to wait for its retry",
        )
        later = repo.mc("task", "later")
    finally:
        apply.send_signal(signal.SIGINT)
        stop(apply)
        reap(apply)
    [why] = [line for line in later.stdout.splitlines() if line.startswith("Why:")]
    assert "next attempt at" in why and "(until" not in why, why

    with served(repo.root):
        started = repo.mc("run", "wf", "--name", "wf-1")
    assert started.returncode == 0, started.stderr
    shown = " ".join(started.stdout.split())
    assert "`mc serve` (pid" in shown and "starts it when it sees the commit" in shown
    assert "Start it with `mc apply`" not in shown


EIGHTH = "result(status='done', output='priced', cost_usd=0.125)\n"


def test_money_has_one_format_tables_round_half_up_and_json_is_normalized(
    repo: ExecRepo,
) -> None:
    repo.agent("priced", EIGHTH, budget={"daily_usd": 1})
    repo.task("costly", agent="priced")
    repo.commit("a run that costs an eighth of a dollar")
    assert repo.mc("apply", "--auto-approve").returncode == 0

    runs, agents = repo.mc("runs"), repo.mc("agents")
    [run] = repo.mc_json("runs")
    [agent] = repo.mc_json("agents")
    task = repo.mc_json("task", "costly")
    [ended] = [e for e in repo.mc_json("events", "--limit", "1000") if e["kind"] == "run.ended"]

    assert "$0.13" in runs.stdout and "$0.12" not in runs.stdout  # half up, not banker's
    assert "$0.13 / $1.00" in agents.stdout
    assert run["cost_usd"] == "0.125" and task["cost_usd"] == "0.125"
    assert task["runs"][0]["cost_usd"] == "0.125"
    assert (agent["spent_today"], agent["daily_cap"]) == ("0.125", "1")
    assert ended["data"]["cost_usd"] == "0.125"
    assert "cost $0.13" in repo.mc("events").stdout
