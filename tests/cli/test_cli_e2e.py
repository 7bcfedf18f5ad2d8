"""End to end through the real `mc` CLI on real git repos and real DuckDB state files.

`mc apply` also drives the work (runs agents) unless told `--no-wait`; these tests are about
plan and apply of declared resources, so they apply with `--no-wait`.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from helpers.starter import GitRepo, apply_head, flat, mc, save_head_plan, sha256_of, task_yaml

from reconciler.commands.context import utcnow
from state.records import NewEvent
from state.store import State

TASK = "tasks/summarize-readme.yaml"
AGENT = "agents/summarizer.yaml"
APPLY = ("apply", "--auto-approve", "--no-wait")
# a well-formed key whose private half was thrown away: nobody can sign with it
ALICE_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOESw61Kjh426R24qBOZqWzWJhYO0mWLsg28elZCtHsK alice"
PLAN_KEYS = {
    "format",
    "commit",
    "state_serial",
    "trust_on_first_use",
    "actions",
    "digest",
    "summary",
    "uncommitted",
    "unconfined",
    "trust",
}
ACTION_KEYS = {
    "action",
    "kind",
    "name",
    "risk",
    "rule",
    "status",
    "approvals_needed",
    "approved_by",
    "note",
}


def ok(proc: subprocess.CompletedProcess[str], code: int = 0) -> str:
    assert proc.returncode == code, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    assert "Traceback" not in proc.stderr
    return proc.stdout


def refused(proc: subprocess.CompletedProcess[str]) -> str:
    """A user error: exit 1, `error:` lines on stderr, no traceback; returns stderr."""
    assert proc.returncode == 1, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    assert "Traceback" not in proc.stderr
    assert proc.stderr.startswith("error: ")
    return proc.stderr


def plan_json(repo: GitRepo, *args: str) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(ok(mc("plan", "--json", *args, cwd=repo.root)))
    return body


def edit_prompt(repo: GitRepo, commit: bool = True) -> None:
    repo.replace(TASK, "prompt: Count", "prompt: Please count")
    if commit:
        repo.commit("a new prompt")


def test_init_plan_apply_edit_plan_apply(tmp_path: Path) -> None:
    root = tmp_path / "mission"
    assert "Created mission repo" in ok(mc("init", str(root), cwd=tmp_path))
    repo = GitRepo(root)
    assert repo.git("status", "--porcelain") == ""  # everything `mc init` wrote is committed
    repo.write("tasks/old-task.yaml", task_yaml("old-task"))
    repo.commit("an extra task")

    first = ok(mc("plan", "--detailed-exitcode", cwd=root), code=2)
    assert "Trust on first use:" in first
    for line in ("+ Mission/my-mission", "+ Agent/summarizer", "+ Task/old-task"):
        assert line in first
    assert "+ Agent/summarizer  LOW (trust on first use)" in first
    assert "Plan: 4 to create, 0 to update, 0 to delete" in flat(first)

    assert "4 applied, 0 waiting for approval" in flat(ok(mc(*APPLY, cwd=root)))
    assert repo.state_file.exists()
    assert repo.git("status", "--porcelain") == ""  # .mc/ is kept out of git
    assert ".mc/" in (root / ".git" / "info" / "exclude").read_text().split()
    assert "No changes." in ok(mc("plan", "--detailed-exitcode", cwd=root))

    repo.replace(TASK, "prompt: Count the words", "prompt: Count the lines")
    repo.remove("tasks/old-task.yaml")
    repo.write("tasks/new-task.yaml", task_yaml("new-task"))
    repo.commit("update, delete, create")
    second = ok(mc("plan", "--detailed-exitcode", cwd=root), code=2)
    lines = second.splitlines()
    delete = lines.index("- Task/old-task  LOW (default: low risk)")
    update = lines.index("~ Task/summarize-readme  LOW (default: low risk)")
    create = lines.index("+ Task/new-task  LOW (default: low risk)")
    assert delete < update < create  # destructive changes first
    old = "Count the words and list the headings of README.md"
    new = old.replace("words", "lines")
    assert lines[update + 1] == f'    ~ spec.prompt: "{old}" → "{new}"'
    assert "Plan: 1 to create, 1 to update, 1 to delete" in flat(second)

    assert "3 applied" in ok(mc(*APPLY, cwd=root))
    assert "No changes." in ok(mc("plan", "--detailed-exitcode", cwd=root))
    assert repo.git("status", "--porcelain") == ""
    with State.open(repo.state_file, write=False) as state:
        assert sorted(state.reader.resources()) == [
            "Agent/summarizer",
            "Mission/my-mission",
            "Task/new-task",
            "Task/summarize-readme",
        ]
        assert state.reader.task_states()["old-task"] == "CANCELED"
        assert state.reader.serial() == 7
        assert state.reader.applied_commit() == repo.head()


def test_plan_json_has_the_documented_shape(applied_repo: GitRepo) -> None:
    edit_prompt(applied_repo)
    applied_repo.write("tasks/draft.yaml", task_yaml("draft"))  # not committed
    body = plan_json(applied_repo)
    assert set(body) == PLAN_KEYS
    assert body["format"] == 3
    assert body["unconfined"] == []
    assert body["trust"] is None  # a Mission is applied: the applied mission judges
    assert body["commit"] == applied_repo.head()
    assert body["state_serial"] == 3
    assert body["trust_on_first_use"] is False
    assert body["digest"].startswith("sha256:")
    assert body["summary"] == {
        "create": 0,
        "update": 1,
        "delete": 0,
        "needs_approval": 0,
        "blocked": 0,
    }
    assert body["uncommitted"] == ["tasks/draft.yaml"]
    (action,) = body["actions"]
    assert set(action) >= ACTION_KEYS | {"digest", "old_digest", "path", "changes"}
    assert (action["action"], action["kind"], action["name"], action["path"]) == (
        "update",
        "Task",
        "summarize-readme",
        TASK,
    )
    assert (action["risk"], action["rule"], action["status"]) == (
        "LOW",
        "default: low risk",
        "apply",
    )
    assert (action["approvals_needed"], action["approved_by"], action["note"]) == (0, [], None)
    (change,) = action["changes"]
    assert change["path"] == "spec.prompt"
    assert change["old"].startswith("Count") and change["new"].startswith("Please count")


def test_a_saved_plan_applies_exactly_what_it_says(applied_repo: GitRepo, tmp_path: Path) -> None:
    edit_prompt(applied_repo)
    saved = tmp_path / "reviewed.plan.json"
    out = ok(mc("plan", "--out", str(saved), cwd=applied_repo.root))
    assert f"Saved to {saved}" in flat(out)
    body = json.loads(saved.read_text())
    assert body["commit"] == applied_repo.head()

    applied = ok(mc("apply", "--no-wait", str(saved), cwd=applied_repo.root))
    assert "~ Task/summarize-readme" in applied
    assert "1 applied" in applied
    (action,) = body["actions"]
    with State.open(applied_repo.state_file, write=False) as state:
        res = state.reader.resource("Task", "summarize-readme")
        assert res is not None and res.digest == action["digest"]
        assert state.reader.serial() == 4
        last = state.reader.events()[-1]
    assert (last.kind, last.subject, last.commit) == (
        "resource.updated",
        "Task/summarize-readme",
        body["commit"],
    )
    # applying it again is refused: the state serial moved since the plan was made
    before = sha256_of(applied_repo.state_file)
    err = flat(refused(mc("apply", "--no-wait", str(saved), cwd=applied_repo.root)))
    assert "stale plan: made against state serial 3, but the state is now at 4" in err
    assert sha256_of(applied_repo.state_file) == before


def test_a_saved_plan_is_stale_once_head_moves(applied_repo: GitRepo, tmp_path: Path) -> None:
    edit_prompt(applied_repo)
    saved = tmp_path / "p.json"
    body = save_head_plan(applied_repo.root, saved)
    applied_repo.write("tasks/another.yaml", task_yaml("another"))
    head = applied_repo.commit()
    before = sha256_of(applied_repo.state_file)
    err = flat(refused(mc("apply", "--no-wait", str(saved), cwd=applied_repo.root)))
    assert f"stale plan: made from commit {body['commit'][:12]}, but HEAD is now {head[:12]}" in err
    assert "run `mc plan` again" in err
    assert sha256_of(applied_repo.state_file) == before


def test_an_edited_plan_file_is_refused(applied_repo: GitRepo, tmp_path: Path) -> None:
    edit_prompt(applied_repo)
    saved = tmp_path / "p.json"
    body = save_head_plan(applied_repo.root, saved)
    body["actions"][0]["risk"] = "HIGH"
    saved.write_text(json.dumps(body))
    before = sha256_of(applied_repo.state_file)
    err = refused(mc("apply", "--no-wait", str(saved), cwd=applied_repo.root))
    assert f"{saved}: not a valid plan file (plan digest does not match" in flat(err)
    saved.write_text("[]")
    err = refused(mc("apply", "--no-wait", str(saved), cwd=applied_repo.root))
    assert f"{saved}: not a valid plan file" in err
    assert sha256_of(applied_repo.state_file) == before


def test_worktree_previews_uncommitted_edits(applied_repo: GitRepo, tmp_path: Path) -> None:
    edit_prompt(applied_repo, commit=False)
    plain = flat(ok(mc("plan", "--detailed-exitcode", cwd=applied_repo.root)))
    assert f"uncommitted changes are not part of this plan: {TASK}" in plain
    assert "No changes." in plain
    preview = ok(mc("plan", "--worktree", "--detailed-exitcode", cwd=applied_repo.root), code=2)
    assert "the work tree (uncommitted preview)" in preview
    assert "~ Task/summarize-readme" in preview
    assert '→ "Please count' in preview
    err = refused(mc("plan", "--worktree", "--out", str(tmp_path / "p"), cwd=applied_repo.root))
    assert "cannot be saved" in err
    assert not (tmp_path / "p").exists()


def test_rev_plans_another_commit(applied_repo: GitRepo) -> None:
    edit_prompt(applied_repo)
    body = plan_json(applied_repo, "--rev", "HEAD~1")
    assert (body["commit"], body["actions"]) == (applied_repo.git("rev-parse", "HEAD~1"), [])
    err = refused(mc("plan", "--rev", "no-such-rev", cwd=applied_repo.root))
    assert "unknown revision 'no-such-rev'" in err


def test_status_and_events(applied_repo: GitRepo) -> None:
    with State.open(applied_repo.state_file, write=True) as state:
        three_hours_ago = utcnow() - timedelta(hours=3)
        state.writer.append_events([NewEvent("test", "old.event", "x", {})], three_hours_ago)
    status = json.loads(ok(mc("status", "--json", cwd=applied_repo.root)))
    assert set(status) >= {
        "mission",
        "mode",
        "applied_commit",
        "head",
        "state_serial",
        "tasks",
        "agents",
        "pending",
        "uncommitted",
    }
    assert status["mission"] == "my-mission"
    assert status["mode"] == "normal"
    assert status["applied_commit"] == status["head"] == applied_repo.head()
    assert status["state_serial"] == 3
    assert status["tasks"] == {"INBOX": 1}
    assert [(a["name"], a["status"]) for a in status["agents"]] == [("summarizer", "active")]
    assert (status["pending"], status["uncommitted"]) == ([], [])

    events = json.loads(ok(mc("events", "--json", cwd=applied_repo.root)))
    assert [set(e) for e in events] == [
        {"seq", "time", "actor", "kind", "subject", "data", "commit"}
    ] * 4
    assert [e["seq"] for e in events] == [1, 2, 3, 4]
    assert [(e["kind"], e["subject"]) for e in events[:3]] == [
        ("resource.created", "Mission/my-mission"),
        ("resource.created", "Agent/summarizer"),
        ("resource.created", "Task/summarize-readme"),
    ]
    assert {e["commit"] for e in events[:3]} == {applied_repo.head()}
    recent = json.loads(ok(mc("events", "--json", "--since", "1h", cwd=applied_repo.root)))
    assert [e["seq"] for e in recent] == [1, 2, 3]  # the 3-hour-old event is left out
    assert "--since" in refused(mc("events", "--since", "1.2.3h", cwd=applied_repo.root))


def test_state_path_from_env_or_option(mission_repo: GitRepo, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere" / "state.duckdb"
    ok(mc(*APPLY, cwd=mission_repo.root, env={**os.environ, "MC_STATE": str(elsewhere)}))
    assert not mission_repo.state_file.exists()
    with State.open(elsewhere, write=False) as state:
        assert state.reader.serial() == 3

    other = tmp_path / "other.duckdb"
    status = json.loads(ok(mc("--state", str(other), "status", "--json", cwd=mission_repo.root)))
    assert (status["mission"], status["state_serial"]) == (None, 0)
    assert not other.exists()  # reading a missing state creates nothing


def test_apply_without_a_terminal_needs_auto_approve(applied_repo: GitRepo) -> None:
    edit_prompt(applied_repo)
    before = sha256_of(applied_repo.state_file)
    err = refused(mc("apply", cwd=applied_repo.root))
    assert "refusing to apply without confirmation" in err
    assert "--auto-approve" in err
    assert sha256_of(applied_repo.state_file) == before


def test_python_dash_m_cli_is_the_same_entry_point(mission_repo: GitRepo) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "cli", "validate"],
        cwd=mission_repo.root,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Valid. 1 Agent, 1 Mission, 1 Task" in flat(proc.stdout)


@pytest.mark.skipif(
    importlib.util.find_spec("specs.schema") is None, reason="specs/schema.py not written yet"
)
def test_schema_prints_json_schema(tmp_path: Path) -> None:
    schema = json.loads(ok(mc("schema", cwd=tmp_path)))
    assert isinstance(schema, dict)
    text = json.dumps(schema)
    for kind in ("Mission", "Agent", "Task", "Workflow", "WorkflowRun", "Approval"):
        assert f'"{kind}"' in text


def test_a_high_change_waits_for_approval(mission_repo: GitRepo) -> None:
    mission_repo.replace(
        "mission.yaml",
        "approvers: []",
        f'approvers: [{{name: alice, ssh_keys: ["{ALICE_KEY}"]}}]',
    )
    mission_repo.commit("declare an approver")
    assert len(apply_head(mission_repo.root).applied) == 3  # first apply: trusted
    with State.open(mission_repo.state_file, write=False) as state:
        old = state.reader.resource("Agent", "summarizer")
    assert old is not None

    mission_repo.replace(AGENT, "command: [python3,", "command: [python3, -u,")
    head = mission_repo.commit("agent command change")
    plan = ok(mc("plan", cwd=mission_repo.root))
    assert "~ Agent/summarizer  HIGH (default: agent command/env) needs approval 0/1" in plan
    out = flat(ok(mc(*APPLY, cwd=mission_repo.root)))
    assert "0 applied, 1 waiting for approval, 0 blocked" in out

    status = json.loads(ok(mc("status", "--json", cwd=mission_repo.root)))
    (pending,) = status["pending"]
    assert {k: pending[k] for k in ("target", "action", "risk", "commit")} == {
        "target": "Agent/summarizer",
        "action": "update",
        "risk": "HIGH",
        "commit": head,
    }
    assert pending["digest"] != old.digest
    wide = {**os.environ, "COLUMNS": "200"}  # one table row per line
    text = ok(mc("status", cwd=mission_repo.root, env=wide))
    assert "Pending approval" in text
    assert re.search(r"Agent/summarizer\W+update\W+HIGH\W", text), text
    with State.open(mission_repo.state_file, write=False) as state:
        now = state.reader.resource("Agent", "summarizer")
        assert now == old  # the old spec stays until someone approves
        assert now is not None and "-u" not in now.spec["command"]
        assert state.reader.serial() == 3
