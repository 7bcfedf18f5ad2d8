"""The real dashboard in headless Chromium: every page and link, escaping, live SSE, the DAG."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlparse

from browser_harness import LiveServer, PageWatch, require_browser

require_browser()

import pytest  # noqa: E402
from dash_harness import SECRET_VALUE, XSS, Mission, make_app  # noqa: E402
from playwright.sync_api import expect  # noqa: E402

from reconciler.commands.context import utcnow  # noqa: E402
from state.dashboard import cursor_readers  # noqa: E402
from state.records import NewEvent  # noqa: E402
from state.store import State  # noqa: E402
from state.write_batch import TaskWrite, WriteBatch, write_batch  # noqa: E402

MAX_PAGES = 60


@pytest.fixture(scope="module")
def served(mission: Mission) -> Iterator[str]:
    """The dashboard over the state file opened read-only once, one cursor per request."""
    status = {"last_commit": "c" * 40, "uptime_s": 12}
    with State.open(mission.state_file, write=False) as state:
        app = make_app(
            mission, status=lambda: status, open_reader=cursor_readers(state.db), stream_seconds=5
        )
        with LiveServer(app) as server:
            yield server.url


def links(page: Any) -> list[str]:
    hrefs: list[str] = page.eval_on_selector_all(  # SVG links too (their .href is no string)
        "a[href]", "els => els.map(e => new URL(e.getAttribute('href'), document.baseURI).href)"
    )
    return hrefs


def test_every_page_loads_cleanly_and_every_link_works(page: Any, served: str) -> None:
    watch = PageWatch(page, served)
    todo = ["/", "/tasks", "/agents", "/runs", "/approvals", "/events"]
    seen: set[str] = set()
    while todo and len(seen) < MAX_PAGES:
        url = urljoin(served, todo.pop(0))
        parsed = urlparse(url)
        key = parsed.path + ("?" + parsed.query if parsed.query else "")
        if key in seen:
            continue
        seen.add(key)
        response = page.goto(url, wait_until="load")
        assert response is not None and response.status == 200, url
        if parsed.path.startswith(("/openapi.json", "/metrics")):
            continue
        expect(page.locator("header.top")).to_be_visible()
        assert SECRET_VALUE not in page.content()
        for href in links(page):
            target = urlparse(href)
            assert target.netloc == parsed.netloc, f"{url} links outside: {href}"
            if target.path.startswith("/drops/"):  # downloads; checked by the API tests
                continue
            todo.append(target.path + ("?" + target.query if target.query else ""))
    assert {"/", "/tasks/write-report", "/tasks/broken", "/runs/demo-run"} <= seen
    assert len(seen) > 15
    assert watch.problems == []
    assert watch.dialogs == []


def test_user_content_shows_as_text(page: Any, served: str) -> None:
    watch = PageWatch(page, served)
    page.goto(f"{served}/tasks/xss-title")
    expect(page.locator("#task-title")).to_have_text(XSS)
    expect(page.locator("#prompt")).to_have_text(XSS)
    assert page.eval_on_selector_all("script", "els => els.map(e => e.src)") == [
        f"{served}/static/mc.js"
    ]
    page.goto(f"{served}/tasks/write-report")
    drop = page.locator("img[alt='pixel.png']")
    expect(drop).to_be_visible()
    assert page.evaluate("document.querySelector(\"img[alt='pixel.png']\").naturalWidth") == 1
    expect(page.locator(".markdown li").nth(1)).to_have_text("two <script>alert('md')</script>")
    page.goto(f"{served}/tasks/broken")
    expect(page.locator(".run-error")).to_have_text("<img src=x onerror=alert(4)> exploded")
    expect(page.locator("pre.log-stderr")).to_contain_text("boom <script>alert(3)</script>")
    page.goto(f"{served}/tasks?q=script")
    expect(page.locator("#task-table tbody tr td").nth(1)).to_have_text(XSS)
    assert watch.dialogs == []
    assert watch.problems == []


def test_workflow_dag_is_drawn_with_a_node_per_step(page: Any, served: str, tmp_path: Path) -> None:
    watch = PageWatch(page, served)
    page.goto(f"{served}/runs/demo-run")
    dag = page.locator("svg#dag")
    expect(dag).to_be_visible()
    nodes = dag.locator("g.node")
    expect(nodes).to_have_count(4)
    steps = {nodes.nth(i).get_attribute("data-step") for i in range(4)}
    assert steps == {"plan", "build", "docs", "ship"}
    assert dag.locator("path.edge").count() == 4
    fills = page.eval_on_selector_all(
        "svg#dag g.node rect", "els => els.map(e => getComputedStyle(e).fill)"
    )
    assert fills == ["rgb(220, 252, 231)"] * 4  # DONE
    box = dag.bounding_box()
    assert box is not None and box["width"] > 500 and box["height"] > 60
    shot = tmp_path / "dag.png"
    dag.screenshot(path=str(shot))
    full = tmp_path / "run-page.png"
    page.screenshot(path=str(full), full_page=True)
    for png in (shot, full):
        data = png.read_bytes()
        assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 2000, png
    page.locator("svg#dag g.node[data-step='ship']").click()
    expect(page).to_have_url(f"{served}/tasks/demo-run.ship")
    assert watch.problems == []


@pytest.fixture
def live(mission: Mission, tmp_path: Path) -> Iterator[tuple[str, State]]:
    """As in `mc serve`: one read-write connection held by the test, the app on its cursors."""
    copy = tmp_path / "state.duckdb"
    shutil.copy(mission.state_file, copy)
    with State.open(copy, write=True) as state:
        app = make_app(mission, open_reader=cursor_readers(state.db), stream_seconds=20)
        with LiveServer(app) as server:
            yield server.url, state


def move(state: State, task: str, source: str, target: str, note: str | None = None) -> None:
    batch = WriteBatch()
    batch.add_task(TaskWrite(task, source, target, f"{task}-{target}", "alice", f"to {target}"))
    if note is not None:
        batch.events.append(NewEvent("alice", "note", f"Task/{task}", {"text": note}))
    write_batch(state.db, batch, utcnow())


def test_pages_follow_the_state_live_without_reloading(page: Any, live: tuple[str, State]) -> None:
    base, state = live
    watch = PageWatch(page, base)
    page.goto(f"{base}/")
    expect(page.locator("#live-status")).to_have_text("live")
    page.evaluate("window.__notReloaded = 42")
    expect(page.locator('[data-count="FAILED"]')).to_have_text("2")  # broken, prod-deploy
    expect(page.locator('[data-count="INBOX"]')).to_have_text("5")

    move(state, "broken", "FAILED", "INBOX", note="<img src=x onerror=alert(5)>")

    expect(page.locator('[data-count="FAILED"]')).to_have_text("1")
    expect(page.locator('[data-count="INBOX"]')).to_have_text("6")
    feed = page.locator("#event-feed li")
    expect(feed.nth(0)).to_contain_text("<img src=x onerror=alert(5)>")
    expect(feed.nth(1)).to_contain_text("FAILED → INBOX: to INBOX")
    assert page.evaluate("window.__notReloaded") == 42

    page.goto(f"{base}/tasks/broken")
    expect(page.locator("#live-status")).to_have_text("live")
    page.evaluate("window.__notReloaded = 43")
    expect(page.locator("h1 .badge").first).to_have_text("INBOX")

    move(state, "broken", "INBOX", "CANCELED")

    expect(page.locator("h1 .badge").first).to_have_text("CANCELED")  # the fragment reloaded
    expect(page.locator("ol.events li").first).to_contain_text("INBOX → CANCELED")
    assert page.evaluate("window.__notReloaded") == 43
    page.goto("about:blank")  # closes the stream before the server stops
    assert watch.dialogs == []
    assert watch.problems == []
