"""Bad parameters are 4xx and every error carries the security headers (issue 14, item 8):
`/api/cli/events?limit=abc` or `since=notadate` are validated by FastAPI (422 naming the
parameter) instead of reaching the serve loop as a 500; a route that raises is a 500 answered
inside the Guard middleware, so it has the same headers as every other response."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import pytest
from dash_harness import Mission, make_app
from fastapi.testclient import TestClient
from test_dash_security import assert_security_headers

from state.dashboard import DashboardReader
from state.store import StateReader


class LoopViews:
    """Reads params the way ReconcileLoop.cli_view does (fromisoformat, int): a malformed
    value reaching it would raise, so a 2xx here shows the route passed only sound values."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, dict[str, str]]] = []

    def __call__(self, view: str, params: Mapping[str, str]) -> Any:
        self.seen.append((view, dict(params)))
        if "since" in params:
            datetime.fromisoformat(params["since"])
        return {"limit": int(params.get("limit", "100"))}


@pytest.fixture
def views() -> LoopViews:
    return LoopViews()


@pytest.fixture
def served(mission: Mission, views: LoopViews) -> Iterator[TestClient]:
    with TestClient(make_app(mission, cli_view=views), raise_server_exceptions=False) as c:
        yield c


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("limit=abc", "limit"),
        ("limit=0", "limit"),
        ("limit=-5", "limit"),
        ("limit=99999999999999999999999", "limit"),
        ("since=notadate", "since"),
        ("since=2026-13-45T99:00:00", "since"),
        ("worktree=maybe", "worktree"),
    ],
)
def test_bad_cli_parameters_are_a_422_naming_the_parameter(
    served: TestClient, views: LoopViews, query: str, field: str
) -> None:
    r = served.get(f"/api/cli/events?{query}")
    assert r.status_code == 422, r.text
    assert [e["loc"] for e in r.json()["detail"]] == [["query", field]]
    assert_security_headers(r.headers)
    assert views.seen == []  # never reached the loop


def test_sound_cli_parameters_reach_the_loop_normalised(
    served: TestClient, views: LoopViews
) -> None:
    r = served.get("/api/cli/events?limit=7&since=2026-11-29T10:00:00%2B00:00")
    assert r.status_code == 200 and r.json() == {"limit": 7}
    assert views.seen == [("events", {"limit": "7", "since": "2026-11-29T10:00:00+00:00"})]
    assert served.get("/api/cli/plan?worktree=1").status_code == 200
    assert views.seen[-1] == ("plan", {"limit": "100", "worktree": "1"})


@pytest.mark.parametrize(
    "url",
    ["/api/tasks?limit=abc", "/api/events?after=-1", "/api/tasks?page=x", "/tasks?page=0"],
)
def test_bad_parameters_elsewhere_are_4xx_with_the_headers(served: TestClient, url: str) -> None:
    r = served.get(url)
    assert 400 <= r.status_code < 500, (url, r.status_code)
    assert_security_headers(r.headers)


def test_not_found_has_the_headers(served: TestClient) -> None:
    for url in ("/api/tasks/no-such-task", "/no/such/page", "/api/cli/nope"):
        r = served.get(url)
        assert r.status_code == 404, url
        assert_security_headers(r.headers)


@contextmanager
def broken_reader() -> Iterator[tuple[StateReader, DashboardReader]]:
    raise RuntimeError("the reader broke")
    yield  # pragma: no cover


@pytest.mark.parametrize("url", ["/api/overview", "/", "/api/tasks"])
def test_a_server_error_is_a_500_with_the_headers(mission: Mission, url: str) -> None:
    app = make_app(mission, open_reader=broken_reader)
    with TestClient(app, raise_server_exceptions=False) as client:
        r = client.get(url)
    assert r.status_code == 500
    assert "the reader broke" not in r.text  # no internals in the answer
    assert_security_headers(r.headers)
    if url.startswith("/api/"):
        assert r.json() == {"detail": "internal error: the server logged the details"}
