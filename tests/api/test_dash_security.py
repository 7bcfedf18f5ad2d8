"""The dashboard is read-only and safe: 405s, the bearer token, headers, the drop route."""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Mapping

import pytest
from dash_harness import SERVE_STATUS, Mission, make_app
from fastapi.testclient import TestClient

from state.store import State

CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self';"
    " frame-ancestors 'none'"
)
ROUTES = [
    "/",
    "/tasks",
    "/tasks/write-report",
    "/runs/demo-run",
    "/api/overview",
    "/api/tasks",
    "/api/events",
    "/api/stream",
    "/metrics",
    "/healthz",
    "/static/mc.css",
    "/openapi.json",
    "/nope",
]


def drops_by_name(mission: Mission) -> dict[str, str]:
    with State.open(mission.state_file, write=False) as state:
        return {d.path: d.sha256 for d in state.reader.drops("write-report")}


def assert_security_headers(h: Mapping[str, str]) -> None:
    assert h["x-content-type-options"] == "nosniff"
    assert h["x-frame-options"] == "DENY"
    assert h["referrer-policy"] == "no-referrer"
    assert "frame-ancestors 'none'" in h["content-security-policy"]


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
@pytest.mark.parametrize("url", ROUTES)
def test_only_get_and_head_are_allowed(client: TestClient, method: str, url: str) -> None:
    r = client.request(method, url, content=b'{"state": "DONE"}')
    assert r.status_code == 405
    assert r.headers["allow"] == "GET, HEAD"
    assert_security_headers(r.headers)


def test_head_answers_like_get_without_a_body(client: TestClient) -> None:
    for url in ("/", "/tasks", "/api/overview", "/healthz", "/static/mc.css"):
        r = client.head(url)
        assert r.status_code == 200, url
        assert r.content == b""
        assert_security_headers(r.headers)
    found = re.search(r'<img src="/drops/([0-9a-f]{64})"', client.get("/tasks/write-report").text)
    assert found
    r = client.head(f"/drops/{found.group(1)}")
    assert r.status_code == 200 and r.content == b""
    assert r.headers["content-type"] == "image/png"


@pytest.mark.parametrize("url", ROUTES[:-1])
def test_every_response_carries_the_security_headers(client: TestClient, url: str) -> None:
    if url == "/api/stream":
        url += "?after=0"
    r = client.get(url)
    assert r.status_code == 200
    assert r.headers["content-security-policy"] == CSP
    assert_security_headers(r.headers)


def test_errors_carry_the_security_headers_too(client: TestClient) -> None:
    for url in ("/nope", "/tasks/nope", "/api/tasks/nope", "/drops/zz", "/tasks?page=0"):
        r = client.get(url)
        assert r.status_code in (400, 404, 422), url
        assert r.headers["content-security-policy"] == CSP
        assert_security_headers(r.headers)


def test_token_is_required_when_given(mission: Mission) -> None:
    token = "t0k3n-for-tests"
    with TestClient(make_app(mission, token=token, status=lambda: dict(SERVE_STATUS))) as c:
        for url in ("/", "/tasks", "/api/overview", "/metrics", "/openapi.json", "/static/mc.css"):
            r = c.get(url)
            assert r.status_code == 401, url
            assert r.headers["www-authenticate"].startswith("Bearer")
            assert_security_headers(r.headers)
            assert c.get(url, headers={"Authorization": "Bearer wrong"}).status_code == 401
            assert c.get(url, headers={"Authorization": token}).status_code == 401
            assert c.get(url, headers={"Authorization": f"Basic {token}"}).status_code == 401
            ok = c.get(url, headers={"Authorization": f"Bearer {token}"})
            assert ok.status_code == 200, url
        assert c.get("/healthz").text == "ok"  # health checks carry no token
        # the method check comes first: a write is refused even with the token
        r = c.post("/api/tasks", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 405


def test_docs_pages_are_off_but_openapi_is_served(client: TestClient) -> None:
    assert client.get("/docs").status_code == 404
    assert client.get("/redoc").status_code == 404
    spec = client.get("/openapi.json").json()
    assert {
        "/api/overview",
        "/api/tasks",
        "/api/tasks/{name}",
        "/api/agents",
        "/api/runs",
        "/api/runs/{name}",
        "/api/events",
        "/api/approvals",
        "/api/status",
        "/api/stream",
    } <= set(spec["paths"])
    assert "/" not in spec["paths"]  # the pages are not API


def test_drops_are_served_by_sha_with_safe_types(client: TestClient, mission: Mission) -> None:
    drops = drops_by_name(mission)
    png = client.get(f"/drops/{drops['pixel.png']}")
    assert png.status_code == 200
    assert png.headers["content-type"] == "image/png"
    assert png.headers["content-disposition"] == 'inline; filename="pixel.png"'
    assert png.headers["x-content-type-options"] == "nosniff"
    assert "sandbox" in png.headers["content-security-policy"]
    assert png.content.startswith(b"\x89PNG")
    md = client.get(f"/drops/{drops['report.md']}")
    assert md.headers["content-type"] == "text/plain; charset=utf-8"
    assert md.text.startswith("# Report for write-report")
    page = client.get(f"/drops/{drops['page.html']}")  # HTML is never rendered as HTML
    assert page.headers["content-type"] == "text/plain; charset=utf-8"
    blob = client.get(f"/drops/{drops['blob.bin']}")
    assert blob.headers["content-type"] == "application/octet-stream"
    assert blob.headers["content-disposition"] == 'attachment; filename="blob.bin"'
    assert blob.content == bytes(range(256))


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("abc", 400),
        ("A" * 64, 400),  # upper case is not how drops are named
        ("0" * 63 + "g", 400),
        ("0" * 65, 400),
        ("0" * 64, 404),  # well formed, but no such drop
        # encoded slashes decode into the path: no route matches at all
        ("..%2F..%2Fstate.duckdb", 404),
        ("%2e%2e%2f%2e%2e%2fmission.yaml", 404),
        ("..%2F..%2F..%2Fmission.yaml", 404),
        ("..%5C..%5Cmission.yaml", 400),  # backslashes stay in the name: not a sha256
    ],
)
def test_drop_route_refuses_bad_names(client: TestClient, path: str, status: int) -> None:
    r = client.get(f"/drops/{path}")
    assert r.status_code == status
    assert b"DUCK" not in r.content and b"apiVersion" not in r.content


def test_drop_route_never_follows_a_path_out_of_the_drop_store(
    client: TestClient, mission: Mission
) -> None:
    sha = drops_by_name(mission)["blob.bin"]
    stored = mission.paths.drop_file(sha)
    aside = stored.with_name(sha + ".aside")
    stored.rename(aside)
    try:
        os.symlink(mission.root / "mission.yaml", stored)  # planted link to outside .mc/drops
        r = client.get(f"/drops/{sha}")
        assert r.status_code == 404
        assert b"apiVersion" not in r.content
    finally:
        stored.unlink(missing_ok=True)
        aside.rename(stored)
    assert client.get(f"/drops/{sha}").status_code == 200
    for url in ("/drops/../../mission.yaml", "/static/../app.py", "/static/%2e%2e/app.py"):
        r = client.get(url)
        assert r.status_code == 404, url
        assert b"apiVersion" not in r.content and b"create_app" not in r.content


def test_allowed_hosts_refuse_other_host_headers(mission: Mission) -> None:
    app = make_app(mission, allowed_hosts=["127.0.0.1", "localhost"])
    with TestClient(app, base_url="http://127.0.0.1:4100") as c:
        assert c.get("/healthz").status_code == 200
        assert c.get("/", headers={"Host": "localhost:4100"}).status_code == 200
        r = c.get("/api/overview", headers={"Host": "evil.example:4100"})  # DNS rebinding
        assert r.status_code == 400
        assert_security_headers(r.headers)
        assert "dash-tests" not in r.text


def test_live_connections_are_limited(mission: Mission) -> None:
    app = make_app(mission, max_streams=1, stream_seconds=1.5)
    with TestClient(app) as c:
        statuses: list[int] = []

        def open_stream() -> None:
            statuses.append(c.get("/api/stream").status_code)

        both = [threading.Thread(target=open_stream) for _ in range(2)]
        for t in both:
            t.start()
        for t in both:
            t.join(timeout=10)
        assert sorted(statuses) == [200, 503]  # one holds the only slot for 1.5 s
        assert c.get("/api/stream").status_code == 200  # and gives it back when done
