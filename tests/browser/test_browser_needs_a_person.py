"""Issue 15 in headless Chromium: what needs a person, sync with HEAD, the run timeline, and
the layout fixes measured by geometry (card tops, page width, DAG edges, spend bars).

Each test saves a screenshot of the page it checks; with MC_UPDATE_SCREENSHOTS=1 they are
also copied to docs/screenshots/ (how the committed ones are made).
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from browser_harness import LiveServer, PageWatch, require_browser

require_browser()

import pytest  # noqa: E402
from dash_harness import Mission, edge_crossings, make_app  # noqa: E402
from playwright.sync_api import expect  # noqa: E402

from state.dashboard import cursor_readers  # noqa: E402
from state.store import State  # noqa: E402

WIDE = {"width": 1400, "height": 900}  # the width the sideways scroll was seen at
DOCS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
PAGES = ["/", "/tasks", "/tasks/flaky", "/tasks/needs-review", "/agents", "/runs/triage-run"]


@pytest.fixture(scope="module")
def served(mission: Mission) -> Iterator[str]:
    status = {"last_commit": "c" * 40, "uptime_s": 12}
    with State.open(mission.state_file, write=False) as state:
        app = make_app(
            mission, status=lambda: status, open_reader=cursor_readers(state.db), stream_seconds=5
        )
        with LiveServer(app) as server:
            yield server.url


@pytest.fixture
def wide(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport=WIDE)
    context.set_default_timeout(10_000)
    try:
        yield context.new_page()
    finally:
        context.close()


def shoot(page: Any, name: str, tmp_path: Path, full_page: bool = False) -> None:
    """A PNG of the page as the test saw it; copied to docs/screenshots/ on request."""
    path = tmp_path / name
    page.screenshot(path=str(path), full_page=full_page)
    data = path.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 2000
    if os.environ.get("MC_UPDATE_SCREENSHOTS") == "1":
        DOCS.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, DOCS / name)


def test_cards_side_by_side_start_level_and_no_page_scrolls_sideways(
    wide: Any, served: str, tmp_path: Path
) -> None:
    watch = PageWatch(wide, served)
    grids = 0
    for url in [*PAGES, "/approvals", "/tasks/write-report", "/runs/demo-run"]:
        wide.goto(served + url)
        tops: list[list[float]] = wide.eval_on_selector_all(
            "main .grid",
            "gs => gs.map(g => Array.from(g.children).map(c => c.getBoundingClientRect().top))",
        )
        for row in tops:
            grids += 1
            assert max(row) - min(row) <= 1, f"{url}: card tops {row}"
        scroll, client = wide.evaluate(
            "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"
        )
        assert scroll <= client, f"{url} scrolls sideways at 1400 px: {scroll} > {client}"
    assert grids >= 4
    wide.goto(served + "/approvals")
    note = wide.locator("td.approval-note").first
    expect(note).to_contain_text("rollback_plan_for_the_risky_change")  # the long word wraps
    box = note.bounding_box()
    assert box is not None and box["x"] + box["width"] <= WIDE["width"]
    shoot(wide, "approvals.png", tmp_path)
    assert watch.problems == []


def test_pending_approvals_list_both_waiting_tasks_and_the_held_change(
    wide: Any, served: str, tmp_path: Path
) -> None:
    watch = PageWatch(wide, served)
    wide.goto(served + "/")
    expect(wide.locator('[data-count="pending"]')).to_have_text("3")
    waiting = wide.locator("#waiting-tasks tbody tr")
    expect(waiting).to_have_count(2)
    names = {waiting.nth(i).get_attribute("data-task") for i in range(2)}
    assert names == {"needs-review", "risky"}
    expect(wide.locator("#waiting-tasks tr[data-task='needs-review'] .badge")).to_have_text(
        "REVIEW"
    )
    expect(wide.locator("table.pending tbody tr")).to_have_count(1)
    expect(wide.locator("table.pending tbody tr td").first).to_have_text("Agent/breaker")
    shoot(wide, "overview.png", tmp_path)
    wide.goto(served + "/approvals")
    expect(wide.locator("#pending-count")).to_have_text("(3)")
    expect(wide.locator("#waiting-tasks tbody tr")).to_have_count(2)
    assert watch.problems == []


def test_spend_bars_are_drawn_on_each_rows_own_cap(wide: Any, served: str) -> None:
    wide.goto(served + "/")
    rows = wide.eval_on_selector_all(
        "#spend-chart g.bar-row",
        """gs => gs.map(g => ({
            name: g.dataset.name, spent: parseFloat(g.dataset.spent),
            cap: g.dataset.cap ? parseFloat(g.dataset.cap) : null,
            bar: g.querySelector('rect.spent').getBoundingClientRect().width,
            track: g.querySelector('rect').getBoundingClientRect().width}))""",
    )
    by_name = {r["name"]: r for r in rows}
    assert by_name["reviewer"]["cap"] == 1 and by_name["reviewer"]["bar"] == 0  # $0 of $1
    for r in rows:
        if r["cap"]:
            expected = min(r["spent"] / r["cap"], 1) * r["track"]
            assert abs(r["bar"] - expected) <= 1, r
    writer = by_name["writer"]  # $1.50 of its own $5, not of the mission's $10
    assert abs(writer["bar"] / writer["track"] - 0.3) < 0.01


def test_dag_edges_go_around_the_step_boxes(wide: Any, served: str, tmp_path: Path) -> None:
    watch = PageWatch(wide, served)
    for run in ("triage-run", "demo-run"):
        wide.goto(f"{served}/runs/{run}")
        boxes = wide.eval_on_selector_all(
            "svg#dag g.node",
            """gs => gs.map(g => { const b = g.querySelector('rect').getBBox();
                 return [g.dataset.step, [b.x, b.y, b.width, b.height]]; })""",
        )
        paths = wide.eval_on_selector_all(
            "svg#dag path.edge",
            "ps => ps.map(p => [p.dataset.from, p.dataset.to, p.getAttribute('d')])",
        )
        edges = [
            (src, dst, [(float(x), float(y)) for x, y in re.findall(r"(-?[\d.]+),(-?[\d.]+)", d)])
            for src, dst, d in paths
        ]
        assert len(edges) == 4 and all(len(points) >= 2 for _, _, points in edges)
        assert edge_crossings(edges, {step: tuple(box) for step, box in boxes}) == []
    wide.goto(f"{served}/runs/triage-run")
    skip = wide.locator("svg#dag path.edge[data-from='setup'][data-to='fix']")
    assert len(re.findall(r"[ML]", skip.get_attribute("d") or "")) > 2  # routed, not straight
    shoot(wide, "workflow-run-dag.png", tmp_path)
    assert watch.problems == []


def test_task_page_timeline_links_and_readable_history(
    wide: Any, served: str, tmp_path: Path
) -> None:
    watch = PageWatch(wide, served)
    wide.goto(served + "/tasks/flaky")
    bars = wide.locator("#timeline g.attempt-bar")
    expect(bars).to_have_count(1)
    expect(bars.first).to_have_attribute("data-outcome", "retry")
    bar = bars.first.locator("rect").bounding_box()
    retry = wide.locator("#timeline g.next-retry line").bounding_box()
    assert bar is not None and retry is not None and bar["width"] >= 2  # SVG scaled to fit
    assert retry["x"] > bar["x"] + bar["width"]  # the next retry comes after the attempt
    expect(wide.locator("tr.next-retry-row")).to_contain_text("retry due at")
    details = wide.locator("ol.events details.raw").first
    expect(details.locator("pre")).to_be_hidden()  # raw JSON only on demand
    details.locator("summary").click()
    expect(details.locator("pre")).to_be_visible()
    expect(wide.locator("#spec")).not_to_contain_text("null")
    wide.locator("h2", has_text="Attempts").scroll_into_view_if_needed()
    wide.evaluate("window.scrollBy(0, -120)")
    shoot(wide, "task-timeline.png", tmp_path)
    wide.goto(served + "/tasks/needs-review")
    wide.locator("#dependents a[href='/tasks/after-draft']").click()
    expect(wide).to_have_url(f"{served}/tasks/after-draft")
    expect(wide.locator("#depends-on")).to_contain_text("needs-review")
    expect(wide.locator("#depends-on .badge")).to_have_text("REVIEW")
    wide.goto(served + "/tasks/prod-deploy")
    expect(wide.locator("#denied-by")).to_have_text(
        "denied by policy: rule 'no-prod-dispatch' of mission.yaml decides DENY for its dispatch"
    )
    shoot(wide, "task-denied.png", tmp_path)
    assert watch.problems == []


def test_sync_badges_and_the_diff_with_head(wide: Any, served: str, tmp_path: Path) -> None:
    watch = PageWatch(wide, served)
    wide.goto(served + "/agents")
    expect(wide.locator("tr[data-agent='breaker'] td.sync .badge")).to_have_text(
        "out of sync · update"
    )
    for agent in ("writer", "reviewer", "sleeper", "flaker"):
        expect(wide.locator(f"tr[data-agent='{agent}'] td.sync .badge")).to_have_text("in sync")
    diff = wide.locator(".sync-diff[data-key='Agent/breaker'] table.diff")
    expect(diff).to_be_visible()
    expect(diff.locator("tr[data-field='spec.command'] td.new")).to_contain_text("--v2")
    shoot(wide, "agents-sync.png", tmp_path)
    wide.goto(served + "/")
    expect(wide.locator("#sync-card tr[data-key='Agent/breaker']")).to_be_visible()
    wide.goto(served + "/tasks")
    expect(wide.locator("tr[data-task='write-report'] td.sync .badge")).to_have_text("in sync")
    assert watch.problems == []
