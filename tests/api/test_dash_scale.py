"""The task list at 10k tasks: filtered, counted and paged in SQL (no timing asserts)."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from dash_harness import Mission, file_readers, make_app, seed_tasks
from fastapi.testclient import TestClient

from reconciler.commands.context import utcnow

N = 10_000
MISSION_TASKS = 16
STATES = ["INBOX", "DONE", "FAILED", "IN_PROGRESS", "BLOCKED"]


@pytest.fixture
def big(mission: Mission, state_copy: Path) -> Iterator[TestClient]:
    started = time.monotonic()
    seed_tasks(state_copy, N, utcnow())
    print(f"seeded {N} tasks in {time.monotonic() - started:.2f}s")
    with TestClient(make_app(mission, open_reader=file_readers(state_copy))) as c:
        yield c


def names(page: str) -> list[str]:
    return re.findall(r'<tr data-task="([^"]+)">', page)


def timed(c: TestClient, url: str) -> str:
    started = time.monotonic()
    r = c.get(url)
    print(f"GET {url}: {r.status_code} in {(time.monotonic() - started) * 1000:.0f} ms")
    assert r.status_code == 200
    return str(r.text)


def expected(pred: Callable[[int], bool]) -> list[str]:
    return [f"bulk-{i:06d}" for i in range(N) if pred(i)]


def test_ten_thousand_tasks_page_filter_and_search(big: TestClient) -> None:
    first = timed(big, "/tasks")
    assert f"Showing 1–50 of {N + MISSION_TASKS} tasks" in " ".join(first.split())
    assert len(names(first)) == 50
    second = timed(big, "/tasks?page=2")
    assert len(names(second)) == 50 and not set(names(first)) & set(names(second))
    last = timed(big, f"/tasks?page={(N + MISSION_TASKS + 49) // 50}")
    assert len(names(last)) == ((N + MISSION_TASKS) % 50 or 50)

    # state + label: counted exactly; the newest change first (bulk-000000 is newest)
    want = expected(lambda i: STATES[i % 5] == "FAILED" and i % 2 == 0)
    page = timed(big, "/tasks?state=FAILED&label=parity%3Deven&limit=100")
    assert f"of {len(want)} tasks" in page
    assert names(page) == want[:100]
    api = big.get("/api/tasks?state=FAILED&label=parity%3Deven&limit=100&page=3").json()
    assert api["total"] == len(want)
    assert [t["name"] for t in api["tasks"]] == want[200:300]

    want = expected(lambda i: i % 7 == 3)
    api = big.get("/api/tasks?agent=agent-3&limit=500").json()
    assert api["total"] == len(want) and [t["name"] for t in api["tasks"]] == want[:500]

    assert big.get("/api/tasks?label=tier").json()["total"] == N  # key present, any value
    assert names(timed(big, "/tasks?q=number%209999")) == ["bulk-009999"]
    assert names(timed(big, "/tasks?q=BULK-00012")) == [f"bulk-00012{d}" for d in range(10)]
    beyond = big.get("/api/tasks?page=100000").json()
    assert beyond["tasks"] == [] and beyond["total"] == N + MISSION_TASKS
    timed(big, "/")
    timed(big, "/agents")
    timed(big, "/metrics")
