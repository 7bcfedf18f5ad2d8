"""The task page's answers (issue 15, item 4): sync with HEAD, timeline, links, denials, events.

Over the state a real apply left (dash_harness): the breaker agent's new command waits for an
approval (out of sync), `flaky` failed once and waits minutes for its retry, `prod-deploy`
was denied by a policy rule, `after-draft` depends on `needs-review`.
"""

from __future__ import annotations

import html
import re
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml
from dash_harness import Mission, file_readers, make_app
from fastapi.testclient import TestClient

from api.timeline import build_timeline
from reconciler.commands.context import utcnow
from reconciler.commands.event_text import event_summary
from state.records import ApprovalRow, RunRow
from state.store import State


def flat(text: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", text)).split())


def test_an_out_of_sync_agent_shows_the_field_diff_with_head(client: TestClient) -> None:
    page = client.get("/agents").text
    row = re.search(r'<tr data-agent="breaker">.*?</tr>', page, re.S)
    assert row and 'data-sync="out"' in row[0] and "out of sync · update" in row[0]
    writer = re.search(r'<tr data-agent="writer">.*?</tr>', page, re.S)
    assert writer and 'data-sync="in"' in writer[0]
    diff = re.search(r'<div class="sync-diff" data-key="Agent/breaker">.*?</div>', page, re.S)
    assert diff, "the breaker's card shows how it differs from HEAD"
    assert '<tr data-field="spec.command">' in diff[0]
    assert "--v2" in flat(diff[0])  # HEAD's new argument, not applied yet
    assert diff[0].count("<tr data-field=") == 1  # only what the commit changed
    agents = {a["name"]: a for a in client.get("/api/agents").json()}
    sync = agents["breaker"]["sync"]
    assert sync["in_sync"] is False and sync["action"] == "update" and sync["risk"] == "HIGH"
    assert [d["path"] for d in sync["diff"]] == ["spec.command"]
    assert agents["writer"]["sync"] == {**agents["writer"]["sync"], "in_sync": True}


def test_overview_and_lists_say_what_is_out_of_sync(client: TestClient) -> None:
    text = flat(client.get("/").text)
    assert "Sync with HEAD" in text and "Agent/breaker" in text
    resources = re.search(r"(\d+) of (\d+) applied resources in sync with HEAD", text)
    assert resources and int(resources[2]) - int(resources[1]) == 1
    tasks = client.get("/tasks").text
    write = re.search(r'<tr data-task="write-report">.*?</tr>', tasks, re.S)
    step = re.search(r'<tr data-task="demo-run.plan">.*?</tr>', tasks, re.S)
    assert write and 'data-sync="in"' in write[0]
    assert step and "data-sync" not in step[0]  # a step is synced with its workflow run
    assert client.get("/api/tasks/write-report").json()["sync"]["in_sync"] is True
    assert client.get("/api/tasks/demo-run.plan").json()["sync"] is None
    assert 'data-sync="in"' in client.get("/runs").text


def test_timeline_shows_each_attempt_and_the_next_retry(client: TestClient) -> None:
    detail = client.get("/api/tasks/flaky").json()
    timeline = detail["timeline"]
    [bar] = timeline["bars"]
    assert bar["attempt"] == 1 and bar["outcome"] == "retry" and bar["end"] is not None
    assert timeline["next_retry_at"] == detail["next_attempt_at"] is not None
    assert timeline["retry_x"] > bar["x"] + bar["w"]  # the retry is later than the attempt
    page = client.get("/tasks/flaky").text
    assert page.count('<g class="attempt-bar"') == 1
    assert 'data-outcome="retry"' in page and '<g class="next-retry"' in page
    assert "retry due at" in flat(page)
    assert client.get("/api/tasks/risky").json()["timeline"] is None  # never ran


def test_dependencies_and_dependents_link_both_ways(client: TestClient) -> None:
    after = client.get("/api/tasks/after-draft").json()["links"]
    assert after == {"depends_on": [{"name": "needs-review", "state": "REVIEW"}], "dependents": []}
    review = client.get("/tasks/needs-review").text
    assert "Waits for a person: approval of its result (REVIEW)" in flat(review)
    dependents = re.search(r'<dd id="dependents">.*?</dd>', review, re.S)
    assert dependents and 'href="/tasks/after-draft"' in dependents[0]
    fix = client.get("/api/tasks/triage-run.fix").json()["links"]
    assert [d["name"] for d in fix["depends_on"]] == ["triage-run.setup", "triage-run.test"]
    setup = client.get("/api/tasks/triage-run.setup").json()["links"]
    assert [d["name"] for d in setup["dependents"]] == ["triage-run.lint", "triage-run.fix"]


def test_spec_is_yaml_without_nulls_and_events_are_readable(client: TestClient) -> None:
    page = client.get("/tasks/write-report").text
    spec = re.search(r'<pre class="light" id="spec">(.*?)</pre>', page, re.S)
    assert spec is not None
    text = html.unescape(spec[1])
    assert "null" not in text and "{" not in text.splitlines()[0]
    declared = client.get("/api/tasks/write-report").json()["spec"]
    assert yaml.safe_load(text) == _without_nulls(declared)
    broken = client.get("/tasks/broken").text
    history = flat(broken)
    assert "IN_PROGRESS → FAILED" in history
    assert broken.count('<details class="raw"><summary>JSON</summary>') >= 3


def test_a_denied_task_names_the_rule_or_the_approver(
    mission: Mission, state_copy: Path, client: TestClient
) -> None:
    page = flat(client.get("/tasks/prod-deploy").text)
    assert "denied by policy: rule 'no-prod-dispatch'" in page
    assert client.get("/api/tasks/broken").json()["denied_by"] is None  # failed, not denied
    with State.open(state_copy, write=True) as state:
        digest = state.reader.resource("Task", "prod-deploy")
        assert digest is not None
        deny = ApprovalRow(
            "git:approvals/deny-prod.yaml#0@" + "e" * 40,
            "Task/prod-deploy",
            digest.digest,
            "alice",
            "deny",
            "git",
            "accepted",
            None,
            {"commit": "e" * 40, "comment": "not during the <b>freeze</b>"},
            utcnow(),
        )
        state.writer.record_approvals([deny], utcnow())
    with TestClient(make_app(mission, open_reader=file_readers(state_copy))) as c:
        found = c.get("/api/tasks/prod-deploy").json()["denied_by"]
        shown = c.get("/tasks/prod-deploy").text
    assert found == "denied by alice via git: “not during the <b>freeze</b>”"
    assert "denied by alice via git: “not during the &lt;b&gt;freeze&lt;/b&gt;”" in shown


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    return value


def _run(attempt: int, start: datetime, seconds: float | None, status: str | None) -> RunRow:
    end = start + timedelta(seconds=seconds) if seconds is not None else None
    return RunRow(
        f"r-{attempt}", "t", attempt, "a", "local", "ENDED" if end else "RUNNING", None,
        None, None, None, start, end, 0, status, None, None, Decimal(0), 0,
    )  # fmt: skip


def test_timeline_geometry() -> None:
    t0 = datetime(2026, 11, 29, 12, 0, 0)
    runs = [_run(2, t0 + timedelta(seconds=60), 30, "done"), _run(1, t0, 20, "failed")]
    tl = build_timeline(runs, None, t0 + timedelta(hours=1))
    assert tl is not None
    first, second = tl.bars
    assert (first.attempt, second.attempt) == (1, 2)  # oldest first, whatever the order given
    assert first.x == tl.label_w and second.x + second.w == tl.label_w + tl.axis_w
    assert second.x > first.x + first.w and first.duration_s == 20
    retry = build_timeline([_run(1, t0, 10, "failed")], t0 + timedelta(seconds=30), t0)
    assert retry is not None and retry.retry_x == retry.label_w + retry.axis_w
    assert retry.bars[0].w == round(retry.axis_w / 3)
    running = build_timeline([_run(1, t0, None, None)], None, t0 + timedelta(seconds=5))
    assert running is not None and running.bars[0].outcome == "running"
    assert build_timeline([], None, t0) is None


def test_event_lines_name_what_happened() -> None:
    assert event_summary("task.transition", {"from": "A", "to": "B", "reason": "r"}) == "A → B: r"
    assert event_summary("workflow_run.blocked", {"from": "PENDING"}) == "PENDING → BLOCKED"
    ended = {"agent": "w", "status": "failed", "cost_usd": "0.25", "error": "boom"}
    assert event_summary("run.ended", ended) == "failed · by w · cost $0.25 · error: boom"
    approval = {
        "approver": "alice",
        "decision": "approve",
        "channel": "git",
        "evidence": {"comment": "fine"},
        "reason": None,
    }
    assert event_summary("approval.accepted", approval) == "approve by alice via git — “fine”"
    held = {"risk": "HIGH", "rule": "default", "status": "needs_approval"}
    assert event_summary("plan.needs_approval", held) == "needs_approval: risk HIGH by default"
    assert event_summary("odd.kind", {"a": 1, "b": {"nested": 1}, "c": None}) == "a=1"
    assert event_summary("task.transition", {"from": ["x"]}) == "['x'] → ?"
    assert len(event_summary("note", {"text": "x" * 1000})) == 300
