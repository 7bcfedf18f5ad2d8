"""Pure pieces of the dashboard: DAG stages and layout, spend bars, the safe Markdown subset."""

from __future__ import annotations

from decimal import Decimal

import pytest

from api.markdown import render_markdown
from api.svg import NODE_W, SpendBar, bar_chart, layout_dag, stages


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
        assert e.x1 == at[e.source][0] + NODE_W and e.x2 < at[e.target][0]
    assert dag.width >= max(n.x + n.w for n in dag.nodes)
    assert dag.height >= max(n.y + n.h for n in dag.nodes)


def test_spend_bars_share_one_scale_and_mark_caps() -> None:
    chart = bar_chart(
        [
            SpendBar("mission", Decimal("3"), Decimal("2")),
            SpendBar("a", Decimal("1"), Decimal("4")),
            SpendBar("b", Decimal("0"), None),
        ]
    )
    m, a, b = chart.rows
    assert m.over and not a.over and not b.over
    assert a.cap_x is not None and m.cap_x is not None and b.cap_x is None
    assert a.width * 3 == m.width  # spend 1 vs 3 on the same scale
    assert a.cap_x - chart.label_w == chart.bar_w  # the largest value (cap 4) fills the bar
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
