"""reconciler.serve.metrics: thread-safe histograms and counters, exposition format, /metrics."""

from __future__ import annotations

import re
import threading
from decimal import Decimal

import pytest
from dash_harness import Mission, make_app
from fastapi.testclient import TestClient

from reconciler.serve.metrics import Counter, Histogram, Metrics, Scrape

SAMPLE = re.compile(r"^([a-z_]+)(\{[^}]*\})? (\S+)$")


def samples(text: str) -> dict[str, float]:
    """`name{labels}` -> value for every sample line; HELP/TYPE lines checked for each family."""
    out: dict[str, float] = {}
    typed = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            typed.add(line.split()[2])
            continue
        if line.startswith("# HELP "):
            continue
        m = SAMPLE.match(line)
        assert m, f"not exposition format: {line!r}"
        family = re.sub(r"_(bucket|sum|count)$", "", m.group(1))
        assert m.group(1) in typed or family in typed, f"{line!r} has no TYPE line"
        out[m.group(1) + (m.group(2) or "")] = float(m.group(3))
    return out


def test_histogram_counts_cumulatively_with_bounds_inclusive() -> None:
    h = Histogram("x_seconds", "help", (0.1, 1.0, 10.0))
    for value in (0.05, 0.1, 0.5, 1.0, 3.0, 99.0):
        h.observe(value)
    cumulative, total, count = h.snapshot()
    assert cumulative == [2, 4, 5, 6] and count == 6
    assert total == pytest.approx(103.65)
    s = samples("\n".join(h.render()))
    assert s['x_seconds_bucket{le="0.1"}'] == 2
    assert s['x_seconds_bucket{le="10"}'] == 5
    assert s['x_seconds_bucket{le="+Inf"}'] == 6
    assert s["x_seconds_count"] == 6


def test_histogram_and_counter_are_thread_safe() -> None:
    h = Histogram("t_seconds", "help", (0.5, 2.0))
    c = Counter("t_total", "help")

    def work() -> None:
        for _ in range(5000):
            h.observe(1.0)
            c.inc(kind="a")

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert h.snapshot() == ([0, 40000, 40000], 40000.0, 40000)
    assert samples("\n".join(c.render())) == {'t_total{kind="a"}': 40000}


def test_bad_use_is_refused() -> None:
    with pytest.raises(ValueError):
        Histogram("h", "help", (1.0, 0.5))
    with pytest.raises(ValueError):
        Counter("c", "help").inc(-1)


def test_render_has_every_family_and_escapes_label_values() -> None:
    m = Metrics()
    m.observe_reconcile(0.02)
    m.observe_reconcile(0.7)
    m.observe_commit_to_dispatch(0.3)
    m.count_reconcile_error('bad "yaml"\nhere\\')
    text = m.render(Scrape({"DONE": 3, "FAILED": 1}, {"done": 5, "failed": 2}, Decimal("1.25")))
    assert text.endswith("\n")
    s = samples(text)
    assert s["mc_reconcile_duration_seconds_count"] == 2
    assert s['mc_reconcile_duration_seconds_bucket{le="0.025"}'] == 1
    assert s["mc_reconcile_duration_seconds_sum"] == pytest.approx(0.72)
    assert s["mc_commit_to_dispatch_seconds_count"] == 1
    assert s['mc_tasks{state="DONE"}'] == 3 and s['mc_tasks{state="FAILED"}'] == 1
    assert s['mc_runs_total{status="failed"}'] == 2
    assert s["mc_spend_usd_today"] == 1.25
    assert 'mc_reconcile_errors_total{kind="bad \\"yaml\\"\\nhere\\\\"} 1' in text
    assert "# TYPE mc_tasks gauge" in text and "# TYPE mc_runs_total counter" in text


def test_metrics_route_reads_the_state_at_scrape_time(mission: Mission) -> None:
    shared = Metrics()  # the serve loop's instance, observed while the app serves it
    with TestClient(make_app(mission, metrics=shared)) as c:
        shared.observe_reconcile(0.015)
        shared.observe_commit_to_dispatch(0.4)
        r = c.get("/metrics")
    assert r.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    s = samples(r.text)
    assert s['mc_tasks{state="DONE"}'] == 6
    assert s['mc_tasks{state="FAILED"}'] == 2
    assert s['mc_tasks{state="NEEDS_APPROVAL"}'] == 1
    assert s['mc_runs_total{status="done"}'] == 7 and s['mc_runs_total{status="failed"}'] == 1
    assert s["mc_spend_usd_today"] == 1.5
    assert s["mc_reconcile_duration_seconds_count"] == 1
    assert s['mc_commit_to_dispatch_seconds_bucket{le="0.5"}'] == 1
    assert c.get("/healthz").text == "ok"
