"""The bot's pure parts on plain data: grouping and rate limiting of notifications, which
events are notable, the judgement of a decision, and bounded retry timing."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from api.telegram.awaiting import Awaiting
from api.telegram.notify import Notice, NoticeBuffer, notice_of
from api.telegram.outbox import backoff
from api.telegram.requests import PostedRequest, Requests, needs_new_request, refusal
from state.records import Event

T0 = datetime(2026, 11, 23, 12, 0, 0)
TTL = timedelta(hours=1)


def _event(kind: str, data: dict[str, object], subject: str = "Task/t") -> Event:
    return Event(1, T0, "engine", kind, subject, data, "c0ffee" * 7)


@pytest.mark.parametrize(
    ("kind", "data", "expected"),
    [
        ("task.failed", {"reason": "failed after 3 attempts"}, "failed"),
        ("escalation", {"reason": "escalated: verify"}, "escalated"),
        ("task.transition", {"to": "BLOCKED", "reason": "budget: agent cap"}, "budget"),
        ("task.transition", {"to": "BLOCKED", "reason": "dependency: x failed"}, None),
        ("task.transition", {"to": "DONE", "reason": "done"}, None),
        ("agent.quarantined", {"reason": "5 of 10 failed"}, "quarantined"),
        ("override.set", {"mode": "paused", "reason": "freeze"}, "override"),
        ("override.lifted", {"mode": None}, "override"),
        ("reconcile.error", {"errors": ["mission.yaml:3:1: bad"]}, "reconcile"),
        ("approval.accepted", {}, None),
        ("telegram.posted", {}, None),
    ],
)
def test_which_events_are_notable(kind: str, data: dict[str, object], expected: str | None) -> None:
    found = notice_of(_event(kind, data))
    assert (found.kind if found else None) == expected


def test_a_burst_becomes_one_message_once_quiet() -> None:
    buf = NoticeBuffer(quiet_s=2.0, max_hold_s=10.0, per_minute=6)
    for i in range(50):
        buf.add([Notice("failed", f"Task/t{i:02d}", "exit 1")], now=i * 0.02)
    assert buf.due(1.5) is None  # still arriving
    text = buf.due(3.0)
    assert text is not None
    assert "50 events" in text and "×50: Task/t00, Task/t01, Task/t02 (+47 more)" in text
    assert buf.due(10.0) is None and buf.held() == 0


def test_kinds_are_grouped_most_urgent_first() -> None:
    buf = NoticeBuffer(quiet_s=1.0, max_hold_s=10.0, per_minute=6)
    buf.add([Notice("failed", "Task/a", ""), Notice("reconcile", "commit abc", "bad yaml")], 0.0)
    text = buf.due(2.0) or ""
    lines = text.splitlines()
    assert lines[1].startswith("🛑 reconcile error ×1") and "❌ failed" in lines[3]


def test_a_steady_trickle_is_sent_after_max_hold() -> None:
    buf = NoticeBuffer(quiet_s=2.0, max_hold_s=10.0, per_minute=6)
    now = 0.0
    sent = []
    while now < 25.0:
        buf.add([Notice("failed", "Task/x", "")], now)
        if buf.due(now) is not None:
            sent.append(now)
        now += 1.0
    assert sent == [10.0, 21.0]


def test_at_most_per_minute_messages_the_rest_is_merged() -> None:
    buf = NoticeBuffer(quiet_s=0.0, max_hold_s=0.0, per_minute=2)
    sent = []
    for second in range(0, 70):
        buf.add([Notice("failed", f"Task/{second}", "")], float(second))
        if (text := buf.due(float(second))) is not None:
            sent.append((second, text.splitlines()[0]))
    assert [s for s, _ in sent] == [0, 1, 60, 61]
    assert sent[2][1] == "Mission Control: 59 events"  # 2..60 waited and went out together


def _awaiting(
    digest: str, approved: tuple[str, ...] = (), denied: tuple[str, ...] = ()
) -> Awaiting:
    return Awaiting("Agent/w", digest, "HIGH", "update", 1, approved, denied, T0, None, "rule")


def _req(posted_at: datetime = T0) -> PostedRequest:
    return PostedRequest("ab12cd34", "Agent/w", "sha256:" + "a" * 64, "HIGH", -1, posted_at)


@pytest.mark.parametrize(
    ("current", "now", "expected", "ends"),
    [
        ([], T0, "no longer waiting", True),
        ([_awaiting("sha256:" + "b" * 64)], T0, "stale", True),
        ([_awaiting("sha256:" + "a" * 64)], T0 + TTL + timedelta(seconds=1), "expired", True),
        ([_awaiting("sha256:" + "a" * 64, approved=("alice",))], T0, "alice approved", False),
        ([_awaiting("sha256:" + "a" * 64, denied=("alice",))], T0, "alice denied", False),
        ([_awaiting("sha256:" + "a" * 64, approved=("bob",))], T0, None, False),
    ],
)
def test_refusal_of_a_decision(
    current: list[Awaiting], now: datetime, expected: str | None, ends: bool
) -> None:
    found = refusal(_req(), {a.key: a for a in current}, "alice", now, TTL)
    if expected is None:
        assert found is None
    else:
        assert found is not None and expected in found.reason and found.ends_request is ends


def test_requests_are_posted_once_per_digest_until_they_expire() -> None:
    reqs = Requests()
    req = _req()
    assert needs_new_request(reqs.latest(req.key), T0, TTL)
    reqs.add(req)
    assert not needs_new_request(reqs.latest(req.key), T0, TTL)  # on its way
    req.message_id = 7
    assert not needs_new_request(reqs.latest(req.key), T0 + TTL, TTL)
    assert needs_new_request(reqs.latest(req.key), T0 + TTL + timedelta(seconds=1), TTL)
    reqs.forget(req)
    assert reqs.get(req.id) is None and reqs.latest(req.key) is None


def test_retry_backoff_doubles_and_is_capped() -> None:
    assert [backoff(n, 0.25, 8.0) for n in range(1, 9)] == [0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
