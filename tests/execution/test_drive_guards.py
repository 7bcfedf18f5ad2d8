"""Guards on the work, end to end through the engine with real agents: daily and per-run
budgets (with reservations, mission caps and a new day), the loop breaker, and secrets."""

from __future__ import annotations

import hashlib
import json
import time
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from helpers.exec_repo import ExecRepo, files_under

from reconciler.commands import work as ops
from reconciler.commands.context import utcnow

pytestmark = pytest.mark.timeout(60)


SPENDER = 'result(status="done", output="spent", cost_usd=0.6)'
SMALL_SPENDER = 'result(status="done", output="spent", cost_usd=0.4)'


def test_a_daily_budget_blocks_the_run_after_the_cap_and_raising_it_unblocks(
    repo: ExecRepo,
) -> None:
    """Without a per-run cap a run holds all that is left of the cap: b1 holds $1 and spends
    $0.60; b2 holds the $0.40 left and reports $0.60 at its end: recorded as reported, a
    `budget.overrun`, and a retry for when there is budget again (the day's budget ran out)."""
    # raising an agent's cap is HIGH by default; this mission has no approvers, so its
    # operators say budgets are theirs to change
    ops = {"name": "budgets-are-ops", "match": {"kind": ["Agent"], "fields": ["spec.budget"]},
           "decide": "LOW"}  # fmt: skip
    repo.mission(policy={"rules": [ops]})
    repo.agent("spender", SPENDER, budget={"daily_usd": 1})
    for name in ("b1", "b2", "b3"):
        repo.task(name, agent="spender")
    repo.commit()

    repo.apply()

    assert [repo.task_row(n).state for n in ("b1", "b2", "b3")] == ["DONE", "BLOCKED", "BLOCKED"]
    blocked = repo.task_row("b3")
    assert blocked.reason == "budget: agent spender at $1.20 of its $1.00 daily cap"
    assert repo.runs("b3") == []
    [over] = repo.runs("b2")
    assert (over.status, over.cost_usd) == ("retry", Decimal("0.6"))
    assert over.error == "the $0.4 left of the agent spender daily cap exceeded: $0.6 reported"
    [event] = repo.events("budget.overrun")
    assert event.subject == f"Run/{over.id}"
    assert event.data == {
        "task": "b2",
        "agent": "spender",
        "cap_usd": "0.4",
        "reported_usd": "0.6",
        "scope": "agent spender daily cap",
    }
    with repo.state() as state:
        assert sum(state.reader.spend_by_agent(utcnow().date()).values()) == Decimal("1.2")
    listed = repo.mc("agents", "--json")
    assert listed.returncode == 0, listed.stderr
    assert Decimal(json.loads(listed.stdout)[0]["spent_today"]) == Decimal("1.2")

    repo.agent("spender", SPENDER, budget={"daily_usd": 5})
    repo.commit("raise the cap")
    raised = repo.apply()

    assert raised.result is not None and len(raised.result.applied) == 1
    assert [repo.task_row(n).state for n in ("b2", "b3")] == ["DONE", "DONE"]
    assert len(repo.runs("b3")) == 1


OVERSPENDER = """
Path(os.environ["MC_COST_JSON"]).write_text(json.dumps({"cost_usd": 2.5}))
time.sleep(30)
result(status="done", output="too late")
"""


def test_an_agent_over_its_per_run_cap_is_stopped_and_failed(repo: ExecRepo) -> None:
    repo.agent("overspender", OVERSPENDER, budget={"per_run_usd": 1})
    repo.task("pricey", agent="overspender", retry={"max_attempts": 3})
    repo.commit()

    started = time.monotonic()
    repo.apply()

    assert time.monotonic() - started < 20  # stopped long before its 30 s sleep
    row = repo.task_row("pricey")
    assert (row.state, row.attempts) == ("FAILED", 1)
    assert row.reason is not None and "per-run budget" in row.reason
    [run] = repo.runs("pricey")
    assert run.status == "failed"
    assert run.error is not None and run.error.startswith("per-run budget $1 exceeded: $2.5")
    assert run.cost_usd == Decimal("2.5")  # what it reported spending still counts


BREAKER_AGENT = """
if (Path(os.environ["MC_REPO"]) / "fixed").exists():
    result(status="done", output="fixed")
elif TASK["task"] == "long":
    time.sleep(30)
else:
    print("still broken", file=sys.stderr)
    sys.exit(1)
"""


def test_the_loop_breaker_quarantines_an_agent_and_a_new_spec_lifts_it(repo: ExecRepo) -> None:
    repo.agent("shaky", BREAKER_AGENT, role="v1", concurrency=2)
    repo.task("long", agent="shaky", priority=10)  # runs while the others fail
    names = [f"job{i}" for i in range(1, 7)]
    for name in names:
        repo.task(name, agent="shaky", retry={"max_attempts": 1})
    repo.commit()

    started = time.monotonic()
    repo.apply()

    assert time.monotonic() - started < 20  # `long` was stopped, not waited for
    assert [repo.task_row(n).state for n in names[:5]] == ["FAILED"] * 5
    assert repo.runs("job6") == []  # the quarantined agent ran nothing more
    [event] = repo.events("agent.quarantined")
    assert event.subject == "Agent/shaky"
    assert event.data["reason"] == "loop breaker: 5 of its last 5 runs failed"
    # the run in flight was stopped; its task waits for a fixed agent (not CANCELED)
    long = repo.task_row("long")
    assert (long.state, long.attempts) == ("BLOCKED", 0)
    assert long.reason == "paused: agent shaky is quarantined"
    [requeued] = [
        e
        for e in repo.events("task.transition")
        if e.subject == "Task/long" and e.data["to"] == "INBOX"
    ]
    assert "agent quarantined" in requeued.data["reason"]
    [stopped] = repo.runs("long")
    assert (stopped.status, stopped.error_class) == ("canceled", "canceled")
    listed = json.loads(repo.mc("agents", "--json").stdout)
    assert [(a["name"], a["status"]) for a in listed] == [("shaky", "quarantined")]
    assert listed[0]["reason"] == "loop breaker: 5 of its last 5 runs failed"
    assert (listed[0]["recent_failures"], listed[0]["running"]) == (5, 0)
    table = repo.mc("agents")
    assert table.returncode == 0 and "quarantined" in table.stdout
    assert "loop breaker" in table.stdout

    repo.write("fixed", "yes\n")
    repo.agent("shaky", BREAKER_AGENT, role="v2", concurrency=2)
    repo.commit("fix the agent")
    repo.apply()

    assert repo.task_row("job6").state == "DONE"
    long = repo.task_row("long")
    assert (long.state, long.attempts, long.output) == ("DONE", 1, "fixed")
    with repo.state() as state:
        [lifted] = ops.agents(state.reader, utcnow().date())
    assert (lifted.status, lifted.reason, lifted.recent_failures) == ("active", None, 0)


SECRET = "s3cr3t-" + hashlib.sha256(b"mc exec tests").hexdigest()[:24]
SECRET_SHA = hashlib.sha256(SECRET.encode()).hexdigest()
SECRET_AGENT = """
import hashlib
token = os.environ.get("TOKEN", "")
seen = hashlib.sha256(token.encode()).hexdigest() == TASK["inputs"]["sha"]
print("token is", token)
print("token is", token, file=sys.stderr)
if TASK["task"] == "leak-on-crash":
    sys.exit(1)  # the last stderr line (with the secret) becomes the run's error
result(status="done", output={"seen": seen, "length": len(token)})
"""


def test_a_secret_reaches_the_agent_and_no_file_under_mc(
    repo: ExecRepo, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MC_TEST_SECRET", SECRET)
    repo.agent("keyholder", SECRET_AGENT, env={"TOKEN": {"from_env": "MC_TEST_SECRET"}})
    repo.task("use-key", agent="keyholder", inputs={"sha": SECRET_SHA})
    repo.task("leak-on-crash", agent="keyholder", inputs={"sha": ""}, retry={"max_attempts": 1})
    repo.commit()

    repo.apply()

    row = repo.task_row("use-key")
    assert row.state == "DONE"
    assert row.output == {"seen": True, "length": len(SECRET)}
    [crashed] = repo.runs("leak-on-crash")
    assert crashed.error == "exited with code 1: token is [redacted]"
    files = files_under(repo.mc_dir)
    assert repo.mc_dir / "state.duckdb" in files
    assert any(f.name == "stdout.log" for f in files)
    leaks = [f for f in files if SECRET.encode() in f.read_bytes()]
    assert leaks == []
    # DuckDB may compress strings on disk, so also look at every value it holds
    with repo.state() as state:
        columns = state.db.fetchall(
            "SELECT table_name, column_name FROM information_schema.columns"
            " WHERE table_schema = 'main'"
        )
        assert len(columns) > 50
        for table, column in columns:
            hits = state.db.fetchone(
                f'SELECT count(*) FROM "{table}" WHERE CAST("{column}" AS VARCHAR) LIKE ?',
                [f"%{SECRET}%"],
            )
            assert hits == (0,), f"the secret is in {table}.{column}"
    [run] = repo.runs("use-key")
    stdout = (Path(str(run.workspace)) / "stdout.log").read_text()
    assert "token is [redacted]" in stdout


def test_a_missing_secret_blocks_the_task_naming_the_variable(
    repo: ExecRepo, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MC_TEST_SECRET", raising=False)
    repo.agent("keyholder", SECRET_AGENT, env={"TOKEN": {"from_env": "MC_TEST_SECRET"}})
    repo.task("use-key", agent="keyholder", inputs={"sha": SECRET_SHA})
    repo.commit()

    repo.apply()

    row = repo.task_row("use-key")
    assert row.state == "BLOCKED"
    assert row.reason is not None and "MC_TEST_SECRET" in row.reason
    assert repo.runs("use-key") == []

    monkeypatch.setenv("MC_TEST_SECRET", SECRET)
    repo.apply()

    row = repo.task_row("use-key")
    assert (row.state, row.output) == ("DONE", {"seen": True, "length": len(SECRET)})


CHEAP = """
time.sleep(0.3)
result(status="done", output="cheap", cost_usd=0.1)
"""


def test_runs_in_flight_reserve_their_per_run_cap_until_they_report(repo: ExecRepo) -> None:
    """Two runs in flight reserve 2 × $0.50 of a $1 cap, so the third task waits (BLOCKED);
    they spend only $0.10 each, so it is unblocked and runs once they end."""
    repo.agent("frugal", CHEAP, concurrency=3, budget={"daily_usd": 1, "per_run_usd": 0.5})
    for name in ("r1", "r2", "r3"):
        repo.task(name, agent="frugal")
    repo.commit()

    repo.apply()

    assert [repo.task_row(n).state for n in ("r1", "r2", "r3")] == ["DONE"] * 3
    hops = [
        (e.data["from"], e.data["to"], e.data["reason"])
        for e in repo.events("task.transition")
        if e.subject == "Task/r3"
    ]
    held = "budget: agent frugal at $1.00 of its $1.00 daily cap ($1.00 reserved by runs in flight)"
    assert hops[0] == ("INBOX", "BLOCKED", held)
    assert hops[1] == ("BLOCKED", "INBOX", "budget available again")
    [r3] = repo.runs("r3")
    [first_end] = sorted(r.ended_at for n in ("r1", "r2") for r in repo.runs(n) if r.ended_at)[:1]
    assert r3.started_at >= first_end  # it started only once a reservation was released


def test_the_mission_cap_spans_agents_and_a_new_day_resets_it(repo: ExecRepo) -> None:
    """The mission's daily cap counts every agent's spend; spend is per UTC day."""
    repo.mission(budget={"daily_usd": 1})
    repo.agent("left", SMALL_SPENDER, budget={"per_run_usd": 0.5})
    repo.agent("right", SMALL_SPENDER, budget={"per_run_usd": 0.5})
    repo.task("x1", agent="left")
    repo.task("x2", agent="right")
    repo.task("x3", agent="left", depends_on=["x1", "x2"])  # starts after both spent
    repo.commit()

    def yesterday() -> datetime:
        return utcnow() - timedelta(days=1)

    repo.apply(clock=yesterday)

    assert [repo.task_row(n).state for n in ("x1", "x2", "x3")] == ["DONE", "DONE", "BLOCKED"]
    assert repo.task_row("x3").reason == (
        "budget: mission at $0.80 of its $1.00 daily cap; a run reserves $0.50"
    )

    again = repo.apply(clock=yesterday)  # still the same day: nothing moves
    assert again.converged is not None and repo.task_row("x3").state == "BLOCKED"

    repo.apply()  # today

    assert repo.task_row("x3").state == "DONE"
    with repo.state() as state:
        by_day = state.reader.spend_since(yesterday().date())
    assert [(day, spent) for _, day, spent in by_day] == [
        (yesterday().date(), Decimal("0.4")),
        (yesterday().date(), Decimal("0.4")),
        (utcnow().date(), Decimal("0.4")),
    ]
