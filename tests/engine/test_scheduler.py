"""The pure scheduler and retry timing, with plain data: (tasks, agents, mission) -> decisions."""

from __future__ import annotations

import itertools
import random
from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from reconciler.engine.budgets import RunBudget
from reconciler.engine.retry import next_attempt_at, retry_delay
from reconciler.engine.scheduler import (
    NO_BUDGET,
    AgentView,
    AwaitApproval,
    Block,
    Decision,
    Deny,
    Dispatch,
    MissionView,
    Release,
    TaskView,
    Unblock,
    schedule,
)
from reconciler.tasks.lifecycle import TaskState
from specs.models import RetryPolicy

NOW = datetime(2026, 11, 23, 12, 0, 0)
D = Decimal


def task(name: str, **kw: Any) -> TaskView:
    """An INBOX task for agent `w`, created `age` seconds before NOW (default 60)."""
    age = kw.pop("age", 60)
    kw.setdefault("state", "INBOX")
    kw.setdefault("reason", None)
    kw.setdefault("agent", None if "requires" in kw else "w")
    kw["requires"] = frozenset(kw.get("requires", ()))
    kw["depends_on"] = tuple(kw.get("depends_on", ()))
    kw.setdefault("priority", 0)
    return TaskView(name=name, created_at=NOW - timedelta(seconds=age), **kw)


def agent(name: str = "w", **kw: Any) -> AgentView:
    kw["capabilities"] = frozenset(kw.get("capabilities", ()))
    kw.setdefault("concurrency", 1)
    kw.setdefault("status", "active")
    for money in ("spent_today", "reserved", "daily_cap", "per_run_cap"):
        if money in kw and kw[money] is not None:
            kw[money] = D(str(kw[money]))
    return AgentView(name=name, **kw)


def agents(*views: AgentView) -> dict[str, AgentView]:
    return {a.name: a for a in views}


def capped(usd: str) -> RunBudget:
    """A run holding (and limited to) its per-run cap under a daily cap."""
    return RunBudget(D(usd), D(usd), "per_run")


def rest(usd: str, scope: str = "agent w") -> RunBudget:
    """A run with neither per-run cap nor estimate: it holds (and may spend) what is left."""
    return RunBudget(D(usd), D(usd), "daily", scope)


def run(
    tasks: list[TaskView],
    agent_views: dict[str, AgentView] | None = None,
    mission: MissionView | None = None,
    states: dict[str, str] | None = None,
) -> list[Decision]:
    every = {t.name: TaskState(t.state) for t in tasks}
    every |= {name: TaskState(state) for name, state in (states or {}).items()}
    return schedule(tasks, every, agent_views or agents(agent()), mission or MissionView(), NOW)


# (case id, tasks, agents, mission, states of other tasks, expected decisions)
CASES: list[Any] = [
    # --- dependencies ------------------------------------------------------------------------
    ("deps-done-dispatch", [task("b", depends_on=["a"])], None, None, {"a": "DONE"},
     [Dispatch("b", "w")]),
    ("deps-running-wait", [task("b", depends_on=["a"])], None, None, {"a": "IN_PROGRESS"}, []),
    ("deps-one-of-two-done-wait", [task("c", depends_on=["a", "b"])], None, None,
     {"a": "DONE", "b": "REVIEW"}, []),
    ("dep-failed-block", [task("b", depends_on=["a"])], None, None, {"a": "FAILED"},
     [Block("b", "dependency: a is FAILED")]),
    ("dep-canceled-block", [task("b", depends_on=["a"])], None, None, {"a": "CANCELED"},
     [Block("b", "dependency: a is CANCELED")]),
    ("dep-blocked-waits", [task("b", depends_on=["a"])], None, None, {"a": "BLOCKED"}, []),
    ("dep-recovered-unblock",
     [task("b", depends_on=["a"], state="BLOCKED", reason="dependency: a is FAILED")],
     None, None, {"a": "INBOX"}, [Unblock("b", "dependency recovered")]),
    ("dep-still-failed-stays",
     [task("b", depends_on=["a"], state="BLOCKED", reason="dependency: a is FAILED")],
     None, None, {"a": "FAILED"}, []),
    # --- retry backoff -------------------------------------------------------------------------
    ("backoff-not-passed", [task("t", next_attempt_at=NOW + timedelta(seconds=1))], None, None,
     {}, []),
    ("backoff-due-now", [task("t", next_attempt_at=NOW)], None, None, {}, [Dispatch("t", "w")]),
    ("backoff-passed", [task("t", next_attempt_at=NOW - timedelta(seconds=1))], None, None, {},
     [Dispatch("t", "w")]),
    # --- choosing an agent ---------------------------------------------------------------------
    ("by-name-not-least-loaded", [task("t", agent="busy")],
     agents(agent("busy", concurrency=4, running=3), agent("idle", concurrency=4)), None, {},
     [Dispatch("t", "busy")]),
    ("by-name-unknown-agent", [task("t", agent="ghost")], None, None, {}, []),
    ("by-name-lacks-capability", [task("t", agent="w", requires=["write"])], None, None, {}, []),
    ("by-capabilities", [task("t", requires=["write"])],
     agents(agent("reader", capabilities=["read"]),
            agent("writer", capabilities=["read", "write"])), None, {},
     [Dispatch("t", "writer")]),
    ("by-capabilities-needs-all", [task("t", requires=["read", "write"])],
     agents(agent("r", capabilities=["read"]), agent("w", capabilities=["write"])), None, {},
     []),
    ("least-loaded-by-ratio", [task("t", requires=["x"])],
     agents(agent("a", capabilities=["x"], concurrency=4, running=1),
            agent("b", capabilities=["x"], concurrency=2, running=1)), None, {},
     [Dispatch("t", "a")]),
    ("least-loaded-tie-by-name", [task("t", requires=["x"])],
     agents(agent("b", capabilities=["x"]), agent("a", capabilities=["x"])), None, {},
     [Dispatch("t", "a")]),
    ("load-spreads-over-agents", [task("t1", requires=["x"]), task("t2", requires=["x"], age=1)],
     agents(agent("a", capabilities=["x"], concurrency=2),
            agent("b", capabilities=["x"], concurrency=2)), None, {},
     [Dispatch("t1", "a"), Dispatch("t2", "b")]),
    # --- concurrency ---------------------------------------------------------------------------
    ("concurrency-2-of-3", [task("t1", age=30), task("t2", age=20), task("t3", age=10)],
     agents(agent(concurrency=2)), None, {}, [Dispatch("t1", "w"), Dispatch("t2", "w")]),
    ("concurrency-counts-running", [task("t1", age=30), task("t2", age=20)],
     agents(agent(concurrency=2, running=1)), None, {}, [Dispatch("t1", "w")]),
    ("concurrency-full", [task("t1")], agents(agent(concurrency=2, running=2)), None, {}, []),
    # --- order -----------------------------------------------------------------------------------
    ("priority-then-age-then-name",
     [task("low-old", priority=0, age=500), task("high-new", priority=5, age=10),
      task("high-old", priority=5, age=100), task("high-new-b", priority=5, age=10)],
     agents(agent(concurrency=4)), None, {},
     [Dispatch("high-old", "w"), Dispatch("high-new", "w"), Dispatch("high-new-b", "w"),
      Dispatch("low-old", "w")]),
    ("priority-wins-the-last-slot", [task("old", age=500), task("urgent", priority=9, age=1)],
     None, None, {}, [Dispatch("urgent", "w")]),
    ("age-wins-the-last-slot", [task("new", age=1), task("old", age=500)], None, None, {},
     [Dispatch("old", "w")]),
    # --- modes and agent status -------------------------------------------------------------
    ("mission-paused", [task("t")], None, MissionView(mode="paused"), {}, []),
    ("mission-draining", [task("t")], None, MissionView(mode="draining"), {}, []),
    ("mission-paused-still-gates", [task("t", depends_on=["a"])], None,
     MissionView(mode="paused"), {"a": "FAILED"}, [Block("t", "dependency: a is FAILED")]),
    ("agent-paused", [task("t")], agents(agent(status="paused")), None, {},
     [Block("t", "paused: agent w is paused")]),
    ("agent-draining", [task("t")], agents(agent(status="draining")), None, {},
     [Block("t", "paused: agent w is draining")]),
    ("agent-quarantined", [task("t")], agents(agent(status="quarantined")), None, {},
     [Block("t", "paused: agent w is quarantined")]),
    ("held-task-unblocks-when-agent-returns",
     [task("t", state="BLOCKED", reason="paused: agent w is paused")], agents(agent()), None, {},
     [Unblock("t", "an agent is available again")]),
    ("quarantined-skipped-for-capable", [task("t", requires=["x"])],
     agents(agent("a", capabilities=["x"], status="quarantined"),
            agent("b", capabilities=["x"], concurrency=1, running=0)), None, {},
     [Dispatch("t", "b")]),
    # --- budgets -------------------------------------------------------------------------------
    ("agent-cap-reached", [task("t")], agents(agent(spent_today="1", daily_cap="1")), None, {},
     [Block("t", "budget: agent w at $1.00 of its $1.00 daily cap")]),
    ("agent-cap-below", [task("t")], agents(agent(spent_today="0.99", daily_cap="1")), None, {},
     [Dispatch("t", "w", rest("0.01"))]),
    ("agent-cap-reserved-counts", [task("t")],
     agents(agent(concurrency=2, running=1, spent_today="0.5", reserved="0.5", daily_cap="1")),
     None, {}, [Block("t", "budget: agent w at $1.00 of its $1.00 daily cap"
                           " ($0.50 reserved by runs in flight)")]),
    ("mission-cap-reached", [task("t")], None,
     MissionView(spent_today=D("5"), daily_cap=D("5")), {},
     [Block("t", "budget: mission at $5.00 of its $5.00 daily cap")]),
    ("mission-cap-reserved-counts", [task("t")], None,
     MissionView(spent_today=D("4"), reserved=D("1.5"), daily_cap=D("5")), {},
     [Block("t", "budget: mission at $5.50 of its $5.00 daily cap"
                 " ($1.50 reserved by runs in flight)")]),
    ("mission-cap-below", [task("t")], None, MissionView(spent_today=D("4.99"), daily_cap=D("5")),
     {}, [Dispatch("t", "w", rest("0.01", "mission"))]),
    ("budget-recovered-unblock",
     [task("t", state="BLOCKED", reason="budget: agent w at $1.00 of its $1.00 daily cap")],
     agents(agent(spent_today="0", daily_cap="1")), None, {},
     [Unblock("t", "budget available again")]),
    ("budget-still-over-stays",
     [task("t", state="BLOCKED", reason="budget: agent w at $1.00 of its $1.00 daily cap")],
     agents(agent(spent_today="1", daily_cap="1")), None, {}, []),
    ("mission-budget-still-over-stays",
     [task("t", state="BLOCKED", reason="budget: mission at $5.00 of its $5.00 daily cap")],
     None, MissionView(spent_today=D("5"), daily_cap=D("5")), {}, []),
    ("other-block-reason-stays",
     [task("t", state="BLOCKED", reason="agent: needs a person")], None, None, {}, []),
    # --- approvals -------------------------------------------------------------------------------
    ("gated-awaits-approval", [task("t", gated=True)], None, None, {}, [AwaitApproval("t")]),
    ("gated-approved-dispatches", [task("t", gated=True, approved=True)], None, None, {},
     [Dispatch("t", "w")]),
    ("gated-dependency-failed-blocks-first", [task("t", gated=True, depends_on=["a"])], None,
     None, {"a": "FAILED"}, [Block("t", "dependency: a is FAILED")]),
    ("waiting-approved-release", [task("t", state="NEEDS_APPROVAL", gated=True, approved=True)],
     None, None, {}, [Release("t")]),
    ("waiting-denied-deny", [task("t", state="NEEDS_APPROVAL", gated=True, denied=True)], None,
     None, {}, [Deny("t")]),
    ("waiting-no-decision-stays", [task("t", state="NEEDS_APPROVAL", gated=True)], None, None,
     {}, []),
    # --- only INBOX work is dispatched -------------------------------------------------------
    ("non-inbox-ignored",
     [task("a", state="ASSIGNED"), task("b", state="IN_PROGRESS"), task("c", state="REVIEW"),
      task("d", state="DONE"), task("e", state="FAILED"), task("f", state="CANCELED")],
     agents(agent(concurrency=10)), None, {}, []),
]  # fmt: skip


@pytest.mark.parametrize(
    ("tasks", "agent_views", "mission", "states", "expected"),
    [pytest.param(*case[1:], id=case[0]) for case in CASES],
)
def test_schedule(
    tasks: list[TaskView],
    agent_views: dict[str, AgentView] | None,
    mission: MissionView | None,
    states: dict[str, str],
    expected: list[Decision],
) -> None:
    assert run(tasks, agent_views, mission, states) == expected


def test_schedule_is_a_pure_function_of_its_inputs() -> None:
    tasks = [task(f"t{i}", priority=i % 3, age=i) for i in range(20)]
    views = agents(agent("a", concurrency=3), agent("w", concurrency=2))
    first = run(tasks, views)
    assert first == run(list(reversed(tasks)), views)
    assert first == run(tasks, views)
    assert len([d for d in first if isinstance(d, Dispatch)]) == 2  # only `w` is named


def test_a_run_starts_only_if_its_whole_reservation_fits() -> None:
    """Each start reserves its per-run cap; spent + reserved + the next reservation <= cap."""
    tasks = [task(f"t{i}", age=100 - i) for i in range(5)]
    views = agents(agent(concurrency=5, daily_cap="1", per_run_cap="0.4"))
    why = (
        "budget: agent w at $0.80 of its $1.00 daily cap ($0.80 reserved by runs in flight);"
        " a run reserves $0.40"
    )
    assert run(tasks, views) == [
        Dispatch("t0", "w", capped("0.4")),
        Dispatch("t1", "w", capped("0.4")),
        Block("t2", why),
        Block("t3", why),
        Block("t4", why),
    ]


def test_a_capped_scope_admits_one_run_without_cap_or_estimate() -> None:
    """Measured case: concurrency 8, no per-run cap, a $1 cap: one run at a time, holding all
    that is left (it may spend that much, then it is stopped)."""
    tasks = [task(f"t{i}", age=100 - i) for i in range(8)]
    decisions = run(tasks, agents(agent(concurrency=8, daily_cap="1")))
    assert decisions[0] == Dispatch("t0", "w", rest("1"))
    assert decisions[1:] == [
        Block(f"t{i}", "budget: agent w at $1.00 of its $1.00 daily cap"
                       " ($1.00 reserved by runs in flight)")
        for i in range(1, 8)
    ]  # fmt: skip


def test_an_estimate_is_reserved_and_is_the_limit_under_a_cap() -> None:
    """Measured case: estimated_usd 0.9 used to change nothing; now it is what a run holds."""
    tasks = [task(f"t{i}", age=100 - i, estimated_usd=D("0.9")) for i in range(4)]
    decisions = run(tasks, agents(agent(concurrency=4, daily_cap="1")))
    assert decisions[0] == Dispatch("t0", "w", RunBudget(D("0.9"), D("0.9"), "estimate"))
    assert [type(d) for d in decisions[1:]] == [Block] * 3


def test_the_smaller_per_run_cap_wins_over_an_estimate() -> None:
    tasks = [task("t", per_run_cap=D("0.2"), estimated_usd=D("0.9"))]
    views = agents(agent(daily_cap="1", per_run_cap="0.5"))
    assert run(tasks, views) == [Dispatch("t", "w", capped("0.2"))]


def test_without_any_cap_a_run_reserves_nothing_and_is_limited_by_its_per_run_cap() -> None:
    assert run([task("t")]) == [Dispatch("t", "w", NO_BUDGET)]
    views = agents(agent(per_run_cap="0.3"))
    assert run([task("t")], views) == [Dispatch("t", "w", RunBudget(D("0.3"), D("0.3"), "per_run"))]


def test_an_open_ended_run_in_flight_leaves_a_capped_scope_nothing() -> None:
    """A run that started before any cap applied has no bound: nothing is left to reserve."""
    views = agents(agent(concurrency=2, running=1, daily_cap="5", open_ended=True))
    [block] = run([task("t", per_run_cap=D("0.1"))], views)
    assert block == Block(
        "t", "budget: agent w at $0.00 of its $5.00 daily cap (a run in flight has no per-run"
        " cap or estimate)"
    )  # fmt: skip


def test_the_rest_of_the_tightest_cap_is_held_in_every_scope() -> None:
    tasks = [task("t1", requires=["x"], age=30), task("t2", requires=["x"], age=20)]
    views = agents(agent("a", capabilities=["x"], daily_cap="1", spent_today="0.25"),
                   agent("b", capabilities=["x"]))  # fmt: skip
    decisions = run(tasks, views, MissionView(spent_today=D("0.25"), daily_cap=D("3")))
    assert decisions == [
        Dispatch("t1", "a", rest("0.75", "agent a")),
        Dispatch("t2", "b", rest("2.00", "mission")),  # 3 - 0.25 spent - 0.75 held by t1
    ]


@pytest.mark.parametrize("level", ["agent", "mission"])
def test_reservations_never_exceed_the_cap(level: str) -> None:
    """Random caps, spend and per-run caps / estimates / neither: what the runs that start
    reserve never takes a scope past its cap, each run's limit is its reservation, and a task
    is blocked only when its reservation does not fit."""
    rng = random.Random(7)
    for _ in range(400):
        cap = D(rng.randint(1, 40)) / 4
        spent = D(rng.randint(0, 40)) / 8
        per_run_cap = rng.choice([None, D(rng.randint(1, 12)) / 4])
        estimate = rng.choice([None, D(rng.randint(0, 12)) / 4])
        n = rng.randint(1, 12)
        tasks = [task(f"t{i:02}", age=100 - i, estimated_usd=estimate) for i in range(n)]
        if level == "agent":
            views = agents(agent(concurrency=20, spent_today=spent, daily_cap=cap,
                                 per_run_cap=per_run_cap))  # fmt: skip
            mission = MissionView()
        else:
            views = agents(agent(concurrency=20, per_run_cap=per_run_cap))
            mission = MissionView(spent_today=spent, daily_cap=cap)
        decisions = run(tasks, views, mission)
        started = [d.budget for d in decisions if isinstance(d, Dispatch)]
        blocked = [d for d in decisions if isinstance(d, Block)]
        assert len(started) + len(blocked) == n
        held = sum((b.reserve or D(0) for b in started), D(0))
        assert not started or spent + held <= cap  # the bound, before anything is spent
        assert all(b.limit == b.reserve and b.reserve is not None for b in started)
        wants = per_run_cap or estimate
        if wants is None:
            assert len(started) == (1 if spent < cap else 0)  # one open run at a time
        else:
            assert len(started) == n or spent + held + wants > cap  # none blocked needlessly
        assert all(b.reason.startswith(f"budget: {level}") for b in blocked)


def test_mission_cap_counts_every_agent() -> None:
    tasks = [task("t1", requires=["x"], age=30), task("t2", requires=["x"], age=20)]
    views = agents(agent("a", capabilities=["x"], per_run_cap="1.5"),
                   agent("b", capabilities=["x"], per_run_cap="1.5"))  # fmt: skip
    decisions = run(tasks, views, MissionView(daily_cap=D("2")))
    assert decisions == [
        Dispatch("t1", "a", capped("1.5")),
        Block("t2", "budget: mission at $1.50 of its $2.00 daily cap"
                    " ($1.50 reserved by runs in flight); a run reserves $1.50"),
    ]  # fmt: skip


def test_a_blocked_task_is_unblocked_only_when_its_reservation_fits() -> None:
    blocked = task("t", state="BLOCKED", reason="budget: agent w at …", per_run_cap=D("0.5"))
    fits = agents(agent(spent_today="0.5", daily_cap="1"))
    short = agents(agent(spent_today="0.6", daily_cap="1"))
    held = agents(agent(concurrency=2, running=1, reserved="0.2", spent_today="0.4",
                        daily_cap="1"))  # fmt: skip
    assert run([blocked], fits) == [Unblock("t", "budget available again")]
    assert run([blocked], short) == []
    assert run([blocked], held) == []


def test_a_budget_block_does_not_use_up_the_slot() -> None:
    """An over-budget agent blocks the task; the slot stays free (the load is unchanged)."""
    tasks = [task("t1", age=30), task("t2", age=20)]
    views = agents(agent(concurrency=1, spent_today="2", daily_cap="1"))
    assert [type(d) for d in run(tasks, views)] == [Block, Block]


# --- retry timing -------------------------------------------------------------------------------


def policy(**kw: Any) -> RetryPolicy:
    return RetryPolicy.model_validate(kw)


def test_retry_delay_without_jitter_is_initial_times_backoff_capped() -> None:
    p = policy(initial_interval="1s", backoff=2.0, max_interval="10s", jitter=0)
    rng = random.Random(0)
    delays = [retry_delay(p, n, rng) for n in range(1, 8)]
    assert delays == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0, 10.0]
    assert retry_delay(p, 0, rng) == 1.0  # attempt 0 counts as the first


def test_retry_delay_is_deterministic_for_a_seed() -> None:
    p = policy(initial_interval="100ms", backoff=3.0, max_interval="1m", jitter=0.5)
    first = [retry_delay(p, n, random.Random(42)) for n in range(1, 10)]
    again = [retry_delay(p, n, random.Random(42)) for n in range(1, 10)]
    other = [retry_delay(p, n, random.Random(43)) for n in range(1, 10)]
    assert first == again
    assert first != other


def test_retry_delay_grows_by_backoff_until_the_cap() -> None:
    p = policy(initial_interval="1s", backoff=2.0, max_interval="1h", jitter=0.1)
    rng = random.Random(3)
    delays = [retry_delay(p, n, rng) for n in range(1, 10)]
    # with ±10% jitter and ×2 growth, each delay is strictly more than the one before
    assert all(b > a for a, b in itertools.pairwise(delays))
    assert delays[-1] == pytest.approx(256.0, rel=0.1)


@pytest.mark.parametrize("jitter", [0.0, 0.1, 0.5, 1.0])
@pytest.mark.parametrize("backoff", [1.0, 1.5, 2.0, 10.0])
def test_retry_jitter_stays_within_bounds_over_many_attempts(jitter: float, backoff: float) -> None:
    p = policy(initial_interval="200ms", backoff=backoff, max_interval="30s", jitter=jitter)
    rng = random.Random(11)
    for attempt in range(1, 200):
        capped = min(0.2 * backoff ** (attempt - 1), 30.0)
        delay = retry_delay(p, attempt, rng)
        assert max(0.0, capped * (1 - jitter)) <= delay <= capped * (1 + jitter)
        assert delay <= 30.0 * (1 + jitter)


def test_next_attempt_at_is_now_plus_the_delay() -> None:
    p = policy(initial_interval="2s", backoff=2.0, max_interval="1m", jitter=0.2)
    at = next_attempt_at(p, 3, NOW, random.Random(5))
    assert at - NOW == timedelta(seconds=retry_delay(p, 3, random.Random(5)))
    assert timedelta(seconds=6.4) <= at - NOW <= timedelta(seconds=9.6)


def test_task_view_helper_defaults_are_what_the_cases_assume() -> None:
    t = task("x")
    assert (t.state, t.agent, t.requires, t.gated) == ("INBOX", "w", frozenset(), False)
    assert replace(t, priority=3).priority == 3
