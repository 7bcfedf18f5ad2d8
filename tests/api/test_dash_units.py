"""Pure pieces of the dashboard: DAG stages and layout, spend bars, the safe Markdown subset."""

from __future__ import annotations

import random
from decimal import Decimal
from itertools import pairwise

import pytest
from dash_harness import edge_crossings

from api.markdown import render_markdown
from api.svg import NODE_W, Dag, SpendBar, bar_chart, layout_dag, stages


@pytest.mark.parametrize(
    ("deps", "expected"),
    [
        ({"a": []}, {"a": 0}),
        ({"a": [], "b": ["a"], "c": ["b"]}, {"a": 0, "b": 1, "c": 2}),
        # the longest path decides: d waits for c, which is two deep
        ({"a": [], "b": ["a"], "c": ["b"], "d": ["a", "c"]}, {"a": 0, "b": 1, "c": 2, "d": 3}),
        ({"a": [], "b": [], "c": ["a", "b"]}, {"a": 0, "b": 0, "c": 1}),
        ({"a": ["missing"]}, {"a": 0}),  # unknown dependencies are ignored
        ({"a": ["b"], "b": ["a"]}, {"a": 2, "b": 1}),  # a cycle is cut, not an endless loop
    ],
)
def test_stages_are_longest_path_depth(
    deps: dict[str, list[str]], expected: dict[str, int]
) -> None:
    assert stages(deps) == expected


def test_layout_places_stages_left_to_right_and_rows_in_order() -> None:
    dag = layout_dag(
        [
            ("plan", "r.plan", "DONE", []),
            ("build", "r.build", "IN_PROGRESS", ["plan"]),
            ("docs", "r.docs", "INBOX", ["plan"]),
            ("ship", "r.ship", "INBOX", ["build", "docs"]),
        ]
    )
    at = {n.id: (n.x, n.y) for n in dag.nodes}
    assert at["plan"][0] < at["build"][0] == at["docs"][0] < at["ship"][0]
    assert at["build"][1] < at["docs"][1]
    assert at["plan"][1] == at["build"][1] == at["ship"][1]
    for e in dag.edges:  # each edge runs from its source's right side to its target's left
        (x1, _), (x2, y2) = e.points[0], e.points[-1]
        assert x1 == at[e.source][0] + NODE_W and x2 < at[e.target][0]
        assert at[e.target][1] < y2 < at[e.target][1] + 46
    assert dag.width >= max(n.x + n.w for n in dag.nodes)
    assert dag.height >= max(n.y + n.h for n in dag.nodes)


def _crossings(dag: Dag) -> list[str]:
    boxes = {n.id: (float(n.x), float(n.y), float(n.w), float(n.h)) for n in dag.nodes}
    edges = [(e.source, e.target, [(float(x), float(y)) for x, y in e.points]) for e in dag.edges]
    return edge_crossings(edges, boxes)


def test_an_edge_that_skips_stages_goes_around_the_boxes_between() -> None:
    """The screenshot's case: setup -> fix drawn straight ran through lint and test."""
    dag = layout_dag(
        [
            ("setup", "t.setup", "DONE", []),
            ("lint", "t.lint", "DONE", ["setup"]),
            ("test", "t.test", "INBOX", ["lint"]),
            ("fix", "t.fix", "INBOX", ["setup", "test"]),
        ]
    )
    assert _crossings(dag) == []
    skip = next(e for e in dag.edges if (e.source, e.target) == ("setup", "fix"))
    assert len(skip.points) > 2  # routed, not straight
    pairs = pairwise(skip.points)
    assert all(a == b or ya == yb for (a, ya), (b, yb) in pairs)  # orthogonal
    run_y = skip.points[2][1]  # the long horizontal run lies in a gap between rows
    assert all(not (n.y <= run_y <= n.y + n.h) for n in dag.nodes)


def test_no_edge_crosses_a_box_in_random_dags() -> None:
    """Orthogonal routing through the gaps, checked on 300 random DAGs (a fixed seed)."""
    rng = random.Random(15)
    for _ in range(300):
        n = rng.randint(2, 12)
        steps = []
        for i in range(n):
            deps = sorted({f"s{j}" for j in range(i) if rng.random() < 0.3})
            steps.append((f"s{i}", f"t.s{i}", "INBOX", deps))
        dag = layout_dag(steps)
        assert _crossings(dag) == [], steps


def test_spend_bars_are_drawn_on_each_rows_own_cap() -> None:
    chart = bar_chart(
        [
            SpendBar("mission", Decimal("3"), Decimal("2")),
            SpendBar("a", Decimal("1"), Decimal("4")),
            SpendBar("idle", Decimal("0"), Decimal("1")),
            SpendBar("b", Decimal("0.5"), None),
            SpendBar("c", Decimal("1"), None),
        ]
    )
    m, a, idle, b, c = chart.rows
    assert m.over and not a.over and not idle.over and not b.over
    assert m.width == chart.bar_w  # over its cap: a full (red) bar, not wider
    assert a.width * 4 == chart.bar_w  # $1 of a $4 cap is a quarter, whatever the mission's
    assert idle.width == 0  # $0 of a $1 cap looks empty
    assert a.cap_x == m.cap_x == chart.label_w + chart.bar_w  # the cap is the end of the bar
    assert b.cap_x is None and c.width == chart.bar_w and b.width * 2 == c.width  # uncapped
    assert bar_chart([]).rows == []


@pytest.mark.parametrize(
    ("text", "html"),
    [
        ("# Title", "<h3>Title</h3>"),
        ("plain <b>html</b>", "<p>plain &lt;b&gt;html&lt;/b&gt;</p>"),
        ("**strong** and *em*", "<p><strong>strong</strong> and <em>em</em></p>"),
        ("`<code>`", "<p><code>&lt;code&gt;</code></p>"),
        ("- a\n- b", "<ul>\n<li>a</li>\n<li>b</li>\n</ul>"),
        ("1. a\n2. b", "<ol>\n<li>a</li>\n<li>b</li>\n</ol>"),
        ("```\n<script>x</script>\n```", "<pre><code>&lt;script&gt;x&lt;/script&gt;</code></pre>"),
        ("[click](javascript:alert(1))", "<p>[click](javascript:alert(1))</p>"),
        ('<img src=x onerror="alert(1)">', "<p>&lt;img src=x onerror=&#34;alert(1)&#34;&gt;</p>"),
        ("line one\nline two\n\nnext", "<p>line one line two</p>\n<p>next</p>"),
        ("a ` b", "<p>a ` b</p>"),
    ],
)
def test_markdown_subset_is_safe(text: str, html: str) -> None:
    assert str(render_markdown(text)) == html
