"""The JSON API and the SSE stream over real state; a writer in the same process for live events."""

from __future__ import annotations

import json
import threading
import time
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from dash_harness import SERVE_STATUS, Mission, file_readers, make_app
from fastapi.testclient import TestClient

from api.app import create_app
from reconciler.commands.context import utcnow
from reconciler.engine.launch import Paths
from state.dashboard import cursor_readers
from state.records import ApprovalRow, NewEvent
from state.store import State
from state.write_batch import TaskWrite, WriteBatch, write_batch


def sse_frames(body: str) -> list[dict[str, Any]]:
    """Parse a text/event-stream body into frames of {event, id, data}."""
    frames = []
    for block in body.split("\n\n"):
        fields: dict[str, Any] = {}
        for line in block.splitlines():
            if line.startswith(":"):
                continue
            key, _, value = line.partition(": ")
            fields[key] = value
        if "data" in fields:
            fields["data"] = json.loads(fields["data"])
            frames.append(fields)
    return frames


def test_overview_and_status(client: TestClient, mission: Mission) -> None:
    o = client.get("/api/overview").json()
    assert o["mission"] == "dash-tests" and o["mode"] == "normal"
    assert o["tasks"]["DONE"] == 6 and o["tasks"]["FAILED"] == 2 and o["total_tasks"] == 16
    spend = o["mission_spend"]  # money is a decimal string, as in the CLI's --json
    assert spend["name"] == "mission"
    assert (Decimal(spend["spent"]), Decimal(spend["cap"])) == (Decimal("1.5"), Decimal(10))
    assert {b["name"] for b in o["agent_spend"]} == {
        "writer",
        "breaker",
        "reviewer",
        "sleeper",
        "flaker",
    }
    # what `mc approvals` lists: the held plan action and both tasks waiting for a person
    assert [p["key"] for p in o["pending"]["actions"]] == ["Agent/breaker"]
    assert sorted(t["name"] for t in o["pending"]["tasks"]) == ["needs-review", "risky"]
    assert o["pending"]["count"] == 3
    assert o["workflow_runs"] == {"SUCCEEDED": 1, "BLOCKED": 1}
    assert o["serve"]["last_commit"] == SERVE_STATUS["last_commit"]
    s = client.get("/api/status").json()
    assert s["mission"] == "dash-tests" and s["last_seq"] == o["last_seq"] > 0
    assert s["serve"]["uptime_s"] == 3725


def test_tasks_and_task_detail(client: TestClient) -> None:
    listing = client.get("/api/tasks?state=DONE&limit=2").json()
    assert listing["total"] == 6 and listing["pages"] == 3 and len(listing["tasks"]) == 2
    assert listing["filter"]["state"] == "DONE"
    t = client.get("/api/tasks/write-report").json()
    assert t["state"] == "DONE" and t["kind"] == "Task" and t["labels"]["area"] == "docs"
    assert t["output"] == "report ready: the quarterly report"
    assert t["prompt"] == "the quarterly report" and t["prompt_rendered"] is True
    assert {d["drop"]["path"] for d in t["drops"]} == {
        "report.md",
        "pixel.png",
        "page.html",
        "blob.bin",
    }
    run = t["runs"][0]
    assert run["run"]["status"] == "done" and run["run"]["cost_usd"] == "0.25"
    assert "secret is [redacted]" in run["stdout"]["text"]
    assert t["events"][0]["data"]["to"] == "DONE"
    assert client.get("/api/tasks/nope").json() == {"detail": "no task 'nope'"}
    assert client.get("/api/tasks?limit=0").status_code == 422


def test_agents_runs_approvals_events(client: TestClient) -> None:
    agents = {a["name"]: a for a in client.get("/api/agents").json()}
    assert agents["writer"]["env"]["SECRET_TOKEN"] == {"from_env": "MC_DASH_TEST_SECRET"}
    assert Decimal(agents["writer"]["spent_today"]) == Decimal("1.5")
    assert Decimal(agents["writer"]["daily_cap"]) == 5
    assert (agents["writer"]["spent_today"], agents["writer"]["daily_cap"]) == ("1.5", "5")
    assert agents["breaker"]["recent_failures"] == 1
    assert agents["breaker"]["failures"][0]["task"] == "broken"
    runs = client.get("/api/runs").json()
    assert [(r["name"], r["status"], r["steps"]) for r in runs] == [
        ("demo-run", "SUCCEEDED", {"DONE": 4}),
        ("triage-run", "BLOCKED", {"INBOX": 3, "BLOCKED": 1}),
    ]
    run = client.get("/api/runs/demo-run").json()
    assert [s["id"] for s in run["steps"]] == ["plan", "build", "docs", "ship"]
    assert {n["id"]: n["stage"] for n in run["dag"]["nodes"]} == {
        "plan": 0,
        "build": 1,
        "docs": 1,
        "ship": 2,
    }
    assert client.get("/api/runs/nope").status_code == 404
    approvals = client.get("/api/approvals").json()
    assert approvals["pending"]["actions"][0]["risk"] == "HIGH"
    [unsigned] = approvals["decided"]  # the approver's words are kept beside the rejection
    assert unsigned["status"] == "rejected" and "is not signed" in unsigned["reason"]
    assert unsigned["evidence"]["comment"].startswith("checked the <b>rollback</b> plan")
    assert approvals["pending"]["count"] == 3
    everything = client.get("/api/events?after=0&limit=500").json()
    seqs = [e["seq"] for e in everything["events"]]
    assert seqs == sorted(seqs) and seqs[-1] == everything["last_seq"]
    tail = client.get(f"/api/events?after={seqs[-3]}").json()["events"]
    assert [e["seq"] for e in tail] == seqs[-2:]


def test_stream_sends_events_after_a_seq_and_counts(client: TestClient) -> None:
    last = client.get("/api/status").json()["last_seq"]
    started = time.monotonic()
    r = client.get(f"/api/stream?after={last - 3}")
    assert time.monotonic() - started < 10  # the connection is bounded (1 s in these tests)
    assert r.headers["content-type"].startswith("text/event-stream")
    assert r.headers["cache-control"] == "no-store"
    assert r.text.startswith("retry: ")
    frames = sse_frames(r.text)
    events = [f for f in frames if f["event"] == "mc-event"]
    assert [int(f["id"]) for f in events] == [last - 2, last - 1, last]
    assert [f["data"]["seq"] for f in events] == [last - 2, last - 1, last]
    counts = [f for f in frames if f["event"] == "counts"]
    assert len(counts) == 1  # sent once, then only when something changes
    assert counts[0]["data"]["tasks"]["DONE"] == 6 and counts[0]["data"]["pending"] == 3


def test_stream_resumes_after_last_event_id_and_defaults_to_now(client: TestClient) -> None:
    last = client.get("/api/status").json()["last_seq"]
    resumed = sse_frames(client.get("/api/stream", headers={"Last-Event-ID": str(last - 1)}).text)
    assert [f["data"]["seq"] for f in resumed if f["event"] == "mc-event"] == [last]
    fresh = sse_frames(client.get("/api/stream").text)
    assert not [f for f in fresh if f["event"] == "mc-event"]


def test_stream_delivers_what_a_writer_in_the_same_process_appends(
    mission: Mission, state_copy: Path
) -> None:
    """As in `mc serve`: one read-write connection, the app reading through its cursors."""
    with State.open(state_copy, write=True) as state:
        app = make_app(mission, open_reader=cursor_readers(state.db), stream_seconds=2.5)
        last = state.reader.events(limit=1)[-1].seq

        def write_later() -> None:
            time.sleep(0.4)
            batch = WriteBatch()
            batch.add_task(TaskWrite("broken", "FAILED", "INBOX", "k-1", "alice", "retry it"))
            batch.events.append(NewEvent("alice", "note", "Task/broken", {"text": "<b>hi</b>"}))
            write_batch(state.db, batch, utcnow())

        writer = threading.Thread(target=write_later)
        with TestClient(app) as c:
            writer.start()
            body = c.get(f"/api/stream?after={last}").text
        writer.join(timeout=10)
        frames = sse_frames(body)
        events = [f["data"] for f in frames if f["event"] == "mc-event"]
        assert [(e["kind"], e["subject"]) for e in events] == [
            ("task.transition", "Task/broken"),
            ("note", "Task/broken"),
        ]
        assert events[0]["data"]["to"] == "INBOX" and events[1]["data"]["text"] == "<b>hi</b>"
        counts = [f["data"] for f in frames if f["event"] == "counts"]
        assert counts[0]["tasks"]["FAILED"] == 2 and counts[-1]["tasks"]["FAILED"] == 1
        assert counts[-1]["tasks"]["INBOX"] == 6  # broken, flaky, after-draft, 3 triage steps


def test_a_state_without_a_mission_renders_empty_pages(tmp_path: Path) -> None:
    app = create_app(
        file_readers(tmp_path / "missing.duckdb"),
        paths=Paths(tmp_path, tmp_path / ".mc"),
        clock=lambda: datetime(2026, 1, 2, 3, 4, 5),
    )
    with TestClient(app) as c:
        for url in ("/", "/tasks", "/agents", "/runs", "/approvals", "/events", "/metrics"):
            assert c.get(url).status_code == 200, url
        assert "No mission applied yet" in c.get("/").text
        assert c.get("/api/overview").json()["total_tasks"] == 0


def test_decided_approvals_and_overrides(mission: Mission, state_copy: Path) -> None:
    now = utcnow()
    with State.open(state_copy, write=True) as state:
        state.writer.record_approvals(
            [
                ApprovalRow(
                    "git:approvals/risky.yaml@" + "d" * 40,
                    "Task/risky",
                    "sha256:" + "1" * 64,
                    "alice",
                    "approve",
                    "git",
                    "accepted",
                    None,
                    {"commit": "d" * 40, "key": "SHA256:abcdef"},
                    now,
                ),
                ApprovalRow(
                    "telegram:1:2:3",
                    "Task/risky",
                    "sha256:" + "1" * 64,
                    None,
                    "approve",
                    "telegram",
                    "rejected",
                    "user 3 is not an approver <script>",
                    {"user": 3, "message": 2},
                    now,
                ),
            ],
            now,
        )
        state.writer.set_override("mode", "paused", "bob", "incident <b>42</b>", now)
        state.writer.set_override("mode.git", "normal", "bob", None, now)
    started = (utcnow().replace(microsecond=0)).isoformat()
    app = make_app(
        mission,
        open_reader=file_readers(state_copy),
        status=lambda: {"started_at": started, "reconciles": 7, "override": "mode=paused by bob"},
    )
    with TestClient(app) as c:
        for url in ("/", "/tasks", "/agents"):
            page = c.get(url).text
            assert 'id="override" role="alert"' in page
            assert "mode = paused, set by bob" in page and "incident &lt;b&gt;42&lt;/b&gt;" in page
            assert "mode.git" not in page
        approvals = c.get("/approvals").text
        assert approvals.count("<tr data-approval=") == 3  # and the unsigned one
        assert "key=SHA256:abcdef" in approvals and "user=3" in approvals
        assert "user 3 is not an approver &lt;script&gt;" in approvals
        assert 'class="badge ap-accepted"' in approvals
        task = c.get("/tasks/risky").text
        assert task.count("<tr data-approval=") == 3
        decided = c.get("/api/approvals").json()["decided"]
        assert {(a["channel"], a["status"]) for a in decided} == {
            ("git", "accepted"),
            ("telegram", "rejected"),
            ("git", "rejected"),
        }
        status = c.get("/api/status").json()
        assert [(o["key"], o["value"], o["actor"]) for o in status["overrides"]] == [
            ("mode", "paused", "bob")
        ]
        assert status["serve"]["other"] == {"reconciles": "7"}
        assert 0 <= status["serve"]["uptime_s"] < 60
