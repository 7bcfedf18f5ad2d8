"""Issue 15, items 2 and 5: while `mc serve` runs, every read command answers through it and
says so, `mc retry` is queued through it, `mc task` explains a retry backoff with its time;
serve logs one line per reconcile, dispatch, finished run and error (`--log-format json`)."""

from __future__ import annotations

import json
import signal
from typing import Any

from helpers.exec_repo import ExecRepo
from helpers.mc import reap, start_mc
from helpers.reads import check_reads, held_mission, stop, wait_state
from helpers.serve import free_port
from helpers.starter import GitRepo, task_yaml
from helpers.waiting import wait_until

RETRY_LATER = 'result(status="retry", error="the service is down")\n'


def _events(repo: ExecRepo, kind: str) -> list[dict[str, Any]]:
    found = json.loads(repo.mc("events", "--json", "--limit", "1000").stdout)
    return [e for e in found if e["kind"] == kind]


def test_every_read_answers_while_mc_serve_runs_and_serve_logs_json_lines(
    repo: ExecRepo,
) -> None:
    started, release = held_mission(repo)
    repo.agent("down", RETRY_LATER)
    repo.task(
        "later",
        agent="down",
        retry={"max_attempts": 3, "initial_interval": "1h", "max_interval": "2h"},
    )
    repo.commit("a task that retries in an hour")
    serve = repo.mc_background("serve", "--port", str(free_port()), "--log-format", "json")
    try:
        wait_until(started.exists, 60, "the slow agent to start")
        wait_state(repo, "broken", "FAILED")
        wait_state(repo, "wf-1.s", "DONE")

        check_reads(repo, "mc serve", serve.pid)

        later = json.loads(repo.mc("task", "later", "--json").stdout)
        assert later["why"]["category"] == "backoff", later["why"]
        assert later["why"]["until"] is not None and "next attempt at" in later["why"]["detail"]
        retried = repo.mc("retry", "broken")
        assert retried.returncode == 0 and "Requeued broken" in retried.stdout, retried.stderr
        assert f"(from `mc serve`, pid {serve.pid}" in retried.stderr
        wait_state(repo, "broken", "DONE")
        release.write_text("go")
        wait_state(repo, "long", "DONE")
        repo.write("tasks/bad.yaml", "apiVersion: mc/v1\nkind: Task\nmetadata: {name: [\n")
        bad = repo.commit("a commit that does not parse")
        wait_until(lambda: _events(repo, "reconcile.error"), 30, "the bad commit's error")
        serve.send_signal(signal.SIGTERM)
        out, err = stop(serve)
    finally:
        release.write_text("go")
        reap(serve)
    assert serve.returncode == 0, err
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    kinds = {line["event"] for line in lines}
    assert {"reconcile", "dispatch", "run.finished", "error"} <= kinds, kinds
    finished = [x for x in lines if x["event"] == "run.finished" and x["task"] == "long"]
    assert finished and finished[0]["status"] == "done" and finished[0]["cost_usd"] == "0.25"
    dispatched = [x["task"] for x in lines if x["event"] == "dispatch"]
    assert dispatched.count("broken") == 2  # the first attempt, and the one `mc retry` asked
    assert any(x["event"] == "error" and x["commit"] == bad[:12] for x in lines)


def test_serve_logs_text_lines_by_default(mission_repo: GitRepo) -> None:
    serve = start_mc("-C", str(mission_repo.root), "serve", "--port", str(free_port()))
    try:
        state = mission_repo.root / ".mc" / "state.duckdb"
        wait_until(state.exists, 30, "serve to open its state")
        mission_repo.write("tasks/second.yaml", task_yaml("second"))
        mission_repo.commit("a second task")

        def both_done() -> bool:
            done = start_mc("-C", str(mission_repo.root), "tasks", "--state", "DONE", "--json")
            out, _ = done.communicate(timeout=60)
            return done.returncode == 0 and len(json.loads(out)) == 2

        wait_until(both_done, 60, "both tasks to be done")
        serve.send_signal(signal.SIGTERM)
        out, err = stop(serve)
    finally:
        reap(serve)
    assert serve.returncode == 0, err
    assert "reconcile    commit=" in out and "actions=" in out
    assert "dispatch     task=second" in out
    assert "run.finished task=second agent=summarizer" in out and "status=done" in out
