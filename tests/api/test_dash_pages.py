"""Every dashboard page over the state a real apply left: what it shows, escaped, no secrets."""

from __future__ import annotations

import html
import re

import pytest
from dash_harness import SECRET_ENV, SECRET_VALUE, XSS, Mission, make_app
from fastapi.testclient import TestClient

from state.store import State

PAGES = [
    "/",
    "/tasks",
    "/tasks?state=DONE",
    "/tasks/write-report",
    "/tasks/broken",
    "/tasks/xss-title",
    "/tasks/risky",
    "/tasks/demo-run.plan",
    "/agents",
    "/runs",
    "/runs/demo-run",
    "/approvals",
    "/events",
    "/events?limit=3",
]


def flat(text: str) -> str:
    """Visible text of a page, whitespace-normalised (tags dropped, entities decoded)."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", text)).split())


@pytest.mark.parametrize("url", PAGES)
def test_every_page_renders_from_real_state(client: TestClient, url: str) -> None:
    r = client.get(url)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/html")
    assert '<link rel="stylesheet" href="/static/mc.css">' in r.text
    assert re.search(r'<body data-seq="\d+">', r.text)
    assert "<script>" not in r.text  # only <script src=...>, never inline


def test_overview_counts_spend_pending_and_events(client: TestClient, mission: Mission) -> None:
    with State.open(mission.state_file, write=False) as state:
        counts = state.reader.task_counts()
        last_seq = state.reader.events(limit=1)[-1].seq
    page = client.get("/").text
    for state_name, n in counts.items():
        assert f'<span class="n" data-count="{state_name}">{n}</span>' in page
    assert f'data-count="total">{sum(counts.values())}<' in page
    assert 'data-count="pending">3<' in page  # Agent/breaker, risky, needs-review
    text = flat(page)
    assert "dash-tests" in text
    # six writer runs at $0.25 against the mission's $2 and the writer's $5 daily budget
    assert "$1.50 / $10.00" in text and "$0.00 / no cap" in text
    assert re.search(r'<svg class="chart" id="spend-chart".*?</svg>', page, re.S)
    assert page.count('class="bar-row"') == 6  # the mission and its five agents
    assert "Agent/breaker" in text  # the pending approval
    assert f'<li data-seq="{last_seq}">' in page  # the newest event is listed
    assert "0123456789ab" in text and "up 1h" in text  # serve-loop facts
    assert 'role="alert"' not in page


def test_overview_shows_override_and_last_error_loudly(mission: Mission) -> None:
    status = {
        "last_commit": "a" * 40,
        "override": "paused by <b>alice</b>",
        "last_error": "tasks/x.yaml:3:1: unknown field <script>",
        "last_error_commit": "b" * 40,
        "watcher": "inotify",
    }
    with TestClient(make_app(mission, status=lambda: status)) as c:
        page = c.get("/tasks").text  # on every page, not only the overview
    assert '<div class="alert override" id="override" role="alert">' in page
    assert "paused by &lt;b&gt;alice&lt;/b&gt;" in page
    assert 'id="last-error" role="alert"' in page
    assert "unknown field &lt;script&gt;" in page and "bbbbbbbbbbbb" in page


def test_without_serve_status_the_applied_commit_comes_from_the_state(
    plain_client: TestClient, mission: Mission
) -> None:
    with State.open(mission.state_file, write=False) as state:
        applied = state.reader.applied_commit()
    assert applied
    page = plain_client.get("/").text
    assert f'<span class="mono" id="applied-commit">{applied[:12]}</span>' in page
    assert "reconciled" not in flat(page)


def _task_names(page: str) -> list[str]:
    return re.findall(r'<tr data-task="([^"]+)">', page)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", None),
        ("?state=FAILED", ["broken", "prod-deploy"]),
        ("?state=NEEDS_APPROVAL", ["risky"]),
        ("?label=area%3Ddocs", ["write-report", "xss-title"]),
        ("?label=area", ["broken", "write-report", "xss-title"]),
        ("?label=area%3Dops&state=FAILED", ["broken"]),
        ("?label=area%3Dnone", []),
        ("?agent=breaker", ["broken"]),
        ("?state=REVIEW", ["needs-review"]),
        ("?q=REPORT", ["write-report"]),  # case-insensitive, name or title
        ("?q=quarterly", []),  # the prompt is not searched
        ("?q=script", ["xss-title"]),  # the title
        ("?q=%25", []),  # LIKE wildcards are literal
        ("?run=demo-run", ["demo-run.build", "demo-run.docs", "demo-run.plan", "demo-run.ship"]),
    ],
)
def test_tasks_filters(client: TestClient, query: str, expected: list[str] | None) -> None:
    page = client.get("/tasks" + query).text
    names = sorted(_task_names(page))
    if expected is None:
        assert len(names) == 16 and "risky" in names and "demo-run.ship" in names
    else:
        assert names == expected
        total = client.get("/api/tasks" + query).json()["total"]
        assert total == len(expected)


def test_tasks_paging_links_keep_the_filter(client: TestClient) -> None:
    page = client.get("/tasks?limit=2&label=area").text
    assert "Showing 1–2 of 3 tasks" in flat(page)
    nxt = re.search(r'<a rel="next" href="([^"]+)">', page)
    assert nxt
    href = html.unescape(nxt.group(1))
    assert "label=area" in href and "page=2" in href and "limit=2" in href
    second = client.get(href).text
    assert "Showing 3–3 of 3 tasks" in flat(second)
    assert not set(_task_names(page)) & set(_task_names(second))
    assert '<a rel="prev"' in second and '<a rel="next"' not in second


def test_task_page_shows_prompt_result_drops_attempts_logs_history(client: TestClient) -> None:
    page = client.get("/tasks/write-report").text
    text = flat(page)
    assert "Write the report" in text and "DONE" in text
    assert '<pre class="light" id="prompt">the quarterly report</pre>' in page
    assert "(as rendered for the latest attempt)" in text
    assert "report ready: the quarterly report" in text
    # drops: markdown rendered (safely), the image inline, html and binary as links only
    assert "<h3>Report for write-report</h3>" in page
    assert "<strong>bold</strong>" in page and "<code>code</code>" in page
    assert "&lt;script&gt;alert(&#39;md&#39;)&lt;/script&gt;" in page
    assert re.search(r'<img src="/drops/[0-9a-f]{64}" alt="pixel.png">', page)
    assert "&lt;script&gt;alert(&#39;html drop&#39;)&lt;/script&gt;" in page
    assert ">blob.bin</a>" in page
    # the attempt with its escaped stdout, the secret redacted by the runtime
    assert "Attempt 1" in text and "$0.25 · 42 tokens" in text
    assert "writing &lt;b&gt;bold&lt;/b&gt; for write-report" in page
    assert "secret is [redacted]" in page
    assert "INBOX → ASSIGNED: dispatched to writer" in text
    assert "IN_PROGRESS → DONE" in text
    assert "tasks/write-report.yaml" in text and "area=docs" in text


def test_failed_task_shows_error_and_stderr_escaped(client: TestClient) -> None:
    page = client.get("/tasks/broken").text
    assert "FAILED" in flat(page)
    assert "&lt;img src=x onerror=alert(4)&gt; exploded" in page
    assert "boom &lt;script&gt;alert(3)&lt;/script&gt;" in page
    assert "<img src=x" not in page and "<script>alert(3)" not in page


def test_user_content_is_always_escaped(client: TestClient) -> None:
    escaped = html.escape(XSS, quote=False)
    for url in ("/tasks/xss-title", "/tasks", "/tasks?q=script", "/"):
        page = client.get(url).text
        assert XSS not in page, url
    page = client.get("/tasks/xss-title").text
    assert f'<p id="task-title">{escaped}</p>' in page
    assert f'<pre class="light" id="prompt">{escaped}</pre>' in page
    assert client.get("/api/tasks/xss-title").json()["title"] == XSS  # JSON keeps the data


def test_step_task_page_uses_the_rendered_prompt(client: TestClient) -> None:
    page = client.get("/tasks/demo-run.plan").text
    text = flat(page)
    assert "workflow step" in text and "pipeline › plan (run demo-run)" in text
    assert '<pre class="light" id="prompt">Plan: ship it</pre>' in page
    assert 'href="/runs/demo-run"' in page


def test_agents_page(client: TestClient) -> None:
    page = client.get("/agents").text
    text = flat(page)
    writer = re.search(r'<tr data-agent="writer">(.*?)</tr>', page, re.S)
    breaker = re.search(r'<tr data-agent="breaker">(.*?)</tr>', page, re.S)
    assert writer and breaker
    w = flat(writer.group(1))
    assert "active" in w and "0/4" in w and "idle" in w and "$1.50 / $5.00" in w and "0/6" in w
    assert "1/1" in flat(breaker.group(1))  # one failure among one run
    assert f"SECRET_TOKEN = {{from_env: {SECRET_ENV}}}" in text
    assert "PLAIN = visible" in text
    assert "&lt;img src=x onerror=alert(4)&gt; exploded" in page  # recent failures
    assert SECRET_VALUE not in page


def test_workflow_run_page_draws_the_dag(client: TestClient) -> None:
    page = client.get("/runs/demo-run").text
    svg = re.search(r'<svg class="dag" id="dag".*?</svg>', page, re.S)
    assert svg
    nodes = dict(re.findall(r'<g class="node" data-step="([^"]+)" data-state="([^"]+)">', svg[0]))
    assert nodes == {"plan": "DONE", "build": "DONE", "docs": "DONE", "ship": "DONE"}
    xs = {
        step: int(x)
        for step, x in re.findall(
            r'data-step="([^"]+)" data-state="[^"]+">\s*<title>[^<]*'
            r'</title>\s*<rect x="(\d+)"',
            svg[0],
        )
    }
    assert xs["plan"] < xs["build"] == xs["docs"] < xs["ship"]  # stages by longest path
    edges = re.findall(r'<path class="edge" data-from="([^"]+)" data-to="([^"]+)"', svg[0])
    assert sorted(edges) == sorted(
        [("plan", "build"), ("plan", "docs"), ("build", "ship"), ("docs", "ship")]
    )
    assert svg[0].count('fill="#dcfce7"') == 4  # DONE's fill
    assert 'marker-end="url(#arrow)"' in svg[0]
    assert "SUCCEEDED" in flat(page)


def test_runs_and_approvals_pages(client: TestClient) -> None:
    runs = flat(client.get("/runs").text)
    assert "demo-run pipeline SUCCEEDED" in runs
    approvals = client.get("/approvals").text
    text = flat(approvals)
    assert "Agent/breaker" in text and "update" in text and "HIGH" in text
    assert "can never be approved" in text
    assert "checked the <b>rollback</b> plan with ops" in text  # the note, as text
    assert "is not signed" in text and "No approval decisions recorded." not in text


def test_events_page_pages_by_seq(client: TestClient, mission: Mission) -> None:
    with State.open(mission.state_file, write=False) as state:
        total = state.reader.events(limit=1)[-1].seq
    first = client.get("/events?limit=5").text
    seqs = [int(s) for s in re.findall(r'<li data-seq="(\d+)">', first)]
    assert seqs == list(range(total, total - 5, -1))
    older = re.search(r'<a rel="next" href="([^"]+)">', first)
    assert older
    second = client.get(html.unescape(older.group(1))).text
    seqs2 = [int(s) for s in re.findall(r'<li data-seq="(\d+)">', second)]
    assert seqs2 == list(range(total - 5, total - 10, -1))
    newer = re.search(r'<a rel="prev" href="([^"]+)">', second)
    assert newer
    back = client.get(html.unescape(newer.group(1))).text
    assert [int(s) for s in re.findall(r'<li data-seq="(\d+)">', back)] == seqs
    only = client.get("/events?subject=Task/broken").text
    assert set(re.findall(r'<span class="subject"><a href="[^"]+">([^<]+)</a>', only)) == {
        "Task/broken"
    }


def test_unknown_things_are_404_pages(client: TestClient) -> None:
    for url in ("/tasks/nope", "/runs/nope", "/nope"):
        r = client.get(url)
        assert r.status_code == 404
        assert r.headers["content-type"].startswith("text/html")
        assert "404" in r.text
    r = client.get("/tasks/%3Cscript%3Ealert(1)%3C%2Fscript%3E")
    assert r.status_code == 404 and "<script>alert" not in r.text


def test_no_page_or_api_route_shows_a_secret(client: TestClient) -> None:
    urls = [
        *PAGES,
        "/api/overview",
        "/api/tasks",
        "/api/tasks/write-report",
        "/api/agents",
        "/api/runs/demo-run",
        "/api/events?after=0&limit=500",
        "/openapi.json",
        "/metrics",
    ]
    for url in urls:
        assert SECRET_VALUE not in client.get(url).text, url
