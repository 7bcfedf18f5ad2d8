"""Issue 15, measured case 4: what needs a person, and the approver's words, end to end.

A real mission with a declared approver (a real SSH key): one task gated before dispatch
(NEEDS_APPROVAL), one finished by a real agent and waiting for review (REVIEW). `mc
approvals`, the dashboard's overview, approvals page and /api/approvals, and the Telegram
bot's /pending list must name the same things. Then `mc approve --reason` (a real signed
commit) and an apply: the reason reaches the approval row, the event, the API and the page.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from dash_harness import Mission, file_readers, make_app, until_only_backoff_is_left
from fastapi.testclient import TestClient
from helpers.agents import PY, done_agent_code
from helpers.git import git, run
from helpers.mission_repo import GitRepo

from api.telegram.awaiting import read_awaiting, read_governance
from reconciler.commands import approvals as approve_ops
from reconciler.commands.context import utcnow
from state.dashboard import DashboardReader
from state.store import State

NOTE = "checked the rollback plan with ops <b>twice</b>"


def _mission(root: Path, key_dir: Path) -> GitRepo:
    key = key_dir / "alice_ed25519"
    run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "alice", "-f", str(key)])
    public = key.with_name(key.name + ".pub")
    repo = GitRepo(root)
    repo.init()
    alice = {"name": "alice", "ssh_keys": [public.read_text().strip()]}
    repo.write_doc("mission.yaml", "Mission", "needs-a-person", {"approvers": [alice]})
    repo.agent("doer", command=[PY, "-c", done_agent_code()])
    repo.task("gate", agent="doer", title="Gated", prompt="g", approval="before")
    repo.task("draft", agent="doer", title="Reviewed", prompt="d", approval="after")
    repo.commit("a gated task and a reviewed one")
    repo.apply_now(until_only_backoff_is_left("none"))
    # `mc approve` signs with the repo's configured key, as a person's git config would
    git(root, "config", "gpg.format", "ssh")
    git(root, "config", "user.signingkey", str(public))
    git(root, "config", "user.name", "Alice")
    return repo


@pytest.fixture
def repo(tmp_path: Path) -> Iterator[GitRepo]:
    yield _mission(tmp_path / "mission", tmp_path)


def make_app_for(repo: GitRepo) -> Any:
    mission = Mission(repo.root)
    return make_app(mission, open_reader=file_readers(mission.state_file))


def _telegram_pending(state_file: Path, now: datetime) -> set[str]:
    with State.open(state_file, write=False) as state:
        gov = read_governance(DashboardReader(state.db))
        assert gov is not None
        return {item.target for item in read_awaiting(state.reader, gov, now).values()}


def test_every_surface_lists_both_tasks_that_wait_for_a_person(repo: GitRepo) -> None:
    assert {repo.task_row("gate").state, repo.task_row("draft").state} == {
        "NEEDS_APPROVAL",
        "REVIEW",
    }
    with repo.state() as state:
        cli = approve_ops.approvals(state.reader)
    from_cli = {f"Task/{t['task']}" for t in cli.waiting_tasks} | {p.key for p in cli.pending}
    assert from_cli == {"Task/gate", "Task/draft"}
    with TestClient(make_app_for(repo)) as c:
        api = c.get("/api/approvals").json()["pending"]
        overview = c.get("/").text
        page = c.get("/approvals").text
    from_api = {f"Task/{t['name']}" for t in api["tasks"]} | {p["key"] for p in api["actions"]}
    assert from_api == from_cli and api["count"] == 2
    assert 'data-count="pending">2<' in overview  # it said 0
    assert page.count('<tr data-task="') == 2
    assert _telegram_pending(repo.state_file, utcnow()) == from_cli


def test_the_approvers_reason_is_kept_end_to_end(repo: GitRepo) -> None:
    approve_ops.approve(repo.context(), "Task/gate", "approve", NOTE)
    repo.apply_now(until_only_backoff_is_left("none"))
    with repo.state() as state:
        [row] = state.reader.approvals()
    assert row.status == "accepted" and row.approver == "alice"
    assert row.evidence["comment"] == NOTE  # the approval file's `reason`, as written
    [event] = repo.events("approval.accepted", "Task/gate")
    assert event.data["evidence"]["comment"] == NOTE
    with TestClient(make_app_for(repo)) as c:
        [decided] = c.get("/api/approvals").json()["decided"]
        page = c.get("/approvals").text
        task_page = c.get("/tasks/gate").text
    assert decided["evidence"]["comment"] == NOTE and decided["approver"] == "alice"
    escaped = "checked the rollback plan with ops &lt;b&gt;twice&lt;/b&gt;"
    assert f'<td class="free approval-note">{escaped}</td>' in page
    assert escaped in task_page


def test_requested_changes_show_round_by_round(repo: GitRepo) -> None:
    feedback = "add a test for the <empty> input"
    approve_ops.approve(repo.context(), "Task/draft", "request_changes", feedback)
    repo.apply_now(until_only_backoff_is_left("none"))
    assert repo.task_row("draft").state == "REVIEW"  # reworked by the agent, back for review
    with TestClient(make_app_for(repo)) as c:
        rounds = c.get("/api/tasks/draft").json()["rework_rounds"]
        page = c.get("/tasks/draft").text
    assert [(r["round"], r["by"], r["feedback"]) for r in rounds] == [(1, "alice", feedback)]
    assert '<li data-round="1">' in page
    assert "add a test for the &lt;empty&gt; input" in page
    assert "round 1 by alice: add a test for the &lt;empty&gt; input" in page  # the event line
