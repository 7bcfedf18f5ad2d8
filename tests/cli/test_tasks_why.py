"""Issue 15, item 1: `mc tasks` and `mc task` (text and JSON) through the real CLI, and why a
task is not running for each blocking category, from the scheduler's own answer: a failed
dependency, an approval, a paused agent, a missing secret, a spent budget, a paused mission;
`mc explain Task/x` gives the same answer."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from helpers.exec_repo import ExecRepo
from helpers.mc import flat

DONE = 'result(status="done", output="ok")\n'
FAILS = 'result(status="failed", error="cannot do it")\n'
SPENDS = 'result(status="done", output="spent", cost_usd=0.5)\n'


def _tasks(repo: ExecRepo, *args: str) -> dict[str, dict[str, Any]]:
    done = repo.mc("tasks", *args, "--json")
    assert done.returncode == 0, done.stderr
    return {t["name"]: t for t in json.loads(done.stdout)}


def _blocked_mission(repo: ExecRepo) -> None:
    repo.agent("ok", DONE)
    repo.agent("failer", FAILS)
    repo.agent("sleepy", DONE, status="paused")
    repo.agent("keyed", DONE, env={"API_KEY": {"from_env": "MC_TEST_NO_SUCH_SECRET"}})
    repo.agent("spender", SPENDS, budget={"daily_usd": 0.1}, concurrency=1)
    repo.task("fails", agent="failer")
    repo.task("after-fail", agent="ok", depends_on=["fails"])
    repo.task("gated", agent="ok", approval="before")
    repo.task("on-paused", agent="sleepy")
    repo.task("needs-secret", agent="keyed")
    repo.task("spend-1", agent="spender", priority=10)  # runs first, and spends the cap
    repo.task("spend-2", agent="spender")
    repo.commit("one task blocked for each reason")


def test_why_each_task_waits_in_mc_tasks_json(repo: ExecRepo) -> None:
    _blocked_mission(repo)
    applied = repo.mc("apply", "--auto-approve")
    assert applied.returncode == 0, applied.stderr

    found = _tasks(repo)

    why = {name: t["why"]["category"] for name, t in found.items()}
    assert why.pop("spend-1") in ("done", "budget")  # over its cap: budgets.py decides
    assert why == {
        "fails": "failed",
        "after-fail": "dependency",
        "gated": "approval",
        "on-paused": "paused",
        "needs-secret": "secret",
        "spend-2": "budget",
    }
    for t in found.values():
        assert {"name", "state", "agent", "attempts", "reason", "updated_at"} <= set(t)
    assert found["after-fail"]["why"]["detail"] == "fails is FAILED"
    assert "agent sleepy is paused" in found["on-paused"]["why"]["detail"]
    assert "MC_TEST_NO_SUCH_SECRET" in found["needs-secret"]["why"]["detail"]
    tomorrow = datetime.fromisoformat(found["spend-2"]["updated_at"]).date() + timedelta(days=1)
    assert found["spend-2"]["why"]["until"] == f"{tomorrow.isoformat()}T00:00:00"
    gated = found["gated"]["why"]["detail"]
    assert "0/1 given" in gated and "approvers: nobody" in gated
    blocked = set(_tasks(repo, "--state", "BLOCKED"))
    assert {"after-fail", "on-paused", "needs-secret", "spend-2"} <= blocked
    assert set(_tasks(repo, "--agent", "spender")) == {"spend-1", "spend-2"}

    explained = repo.mc("explain", "Task/after-fail")
    assert explained.returncode == 0, explained.stderr
    assert "why not running: dependency: fails is FAILED" in flat(explained.stdout)


def test_mc_task_text_and_json(repo: ExecRepo) -> None:
    _blocked_mission(repo)
    assert repo.mc("apply", "--auto-approve").returncode == 0

    text = repo.mc("task", "after-fail")
    body = json.loads(repo.mc("task", "fails", "--json").stdout)
    table = repo.mc("tasks")

    assert text.returncode == 0, text.stderr
    shown = flat(text.stdout)
    assert "Task after-fail: Task after-fail" in shown
    assert "State: BLOCKED" in shown and "Why: dependency: fails is FAILED" in shown
    assert "Depends on: fails (FAILED)" in shown and "Attempts: none yet" in shown
    assert body["dependents"] == [{"name": "after-fail", "state": "BLOCKED"}]
    [run] = body["runs"]
    assert (run["attempt"], run["status"], run["error"]) == (1, "failed", "cannot do it")
    assert run["duration_s"] is not None and Decimal(run["cost_usd"]) == 0
    assert body["spec"]["agent"] == "failer" and body["spec"]["max_attempts"] == 3
    assert [e["kind"] for e in body["events"]][:1] == ["task.failed"]
    assert table.returncode == 0 and "spend-2" in table.stdout and "budget" in table.stdout


def test_a_paused_mission_holds_its_tasks_and_says_so(repo: ExecRepo) -> None:
    repo.agent("ok", DONE)
    repo.write_doc("mission.yaml", "Mission", "exec-tests", {"mode": "paused"})
    repo.task("later", agent="ok")
    repo.commit("a paused mission")
    assert repo.mc("apply", "--auto-approve").returncode == 0

    later = _tasks(repo)["later"]

    assert later["state"] == "INBOX"
    assert later["why"]["category"] == "mission"
    assert "paused" in later["why"]["detail"]
