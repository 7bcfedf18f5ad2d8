"""The `mc init` starter repo: in-process plan/apply set-ups and YAML text builders.

Git, the `mc` runner and the repo builder come from `helpers`; they are re-exported here for
the tests that import them from this module.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from helpers.git import git as git
from helpers.mc import flat as flat
from helpers.mc import run_mc
from helpers.mission_repo import GitRepo as GitRepo
from helpers.yaml_docs import doc_text
from reconciler.commands.context import utcnow
from reconciler.commands.init import scaffold
from reconciler.plan.apply import ApplyResult, apply_plan
from reconciler.plan.build import build_plan
from reconciler.plan.codec import plan_to_json
from reconciler.plan.observed import observe
from reconciler.repo.source import MissionRepo
from state.store import State


def mc(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the real CLI in `cwd`; stdin is not a terminal, as in CI."""
    return run_mc(*args, cwd=cwd, env=env)


def apply_head(root: Path, state_path: Path | None = None) -> ApplyResult:
    """Plan HEAD and apply every action the policy allows, in-process (setup, not under test)."""
    repo = MissionRepo(root, state_path)
    repo.ensure_mc_ignored()
    desired = repo.desired("HEAD")
    with State.open(repo.state_path, write=True) as state:
        plan = build_plan(desired, observe(state.reader, desired), utcnow())
        return apply_plan(plan, desired, state, utcnow(), "test")


def save_head_plan(root: Path, out: Path) -> dict[str, Any]:
    """What `mc plan --out FILE` writes, made in-process; returns the plan as JSON."""
    repo = MissionRepo(root)
    desired = repo.desired("HEAD")
    with State.open(repo.state_path, write=False) as state:
        body = plan_to_json(build_plan(desired, observe(state.reader, desired), utcnow()))
    out.write_text(json.dumps(body))
    return body


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def agent_yaml(name: str, command: str = "[python3, agent.py]", extra: str = "") -> str:
    """An Agent as text; `extra` is appended as written (tests place its lines themselves)."""
    return doc_text("Agent", name, f"capabilities: [summarize]\ncommand: {command}") + extra


def task_yaml(name: str, agent: str = "summarizer", prompt: str = "Do it", extra: str = "") -> str:
    """A Task as text; `extra` is appended as written."""
    return doc_text("Task", name, f"title: {name}\nagent: {agent}\nprompt: {prompt}") + extra


# --- fixtures (exposed by conftest.py) ---------------------------------------------------------


@pytest.fixture
def mission_repo(tmp_path: Path) -> GitRepo:
    """The `mc init` starter repo (made in-process; `mc init` itself is tested end to end)."""
    root = tmp_path / "mission"
    scaffold(root)
    return GitRepo(root)


@pytest.fixture
def applied_repo(mission_repo: GitRepo) -> GitRepo:
    """The starter repo with its first apply done, so a state file exists."""
    result = apply_head(mission_repo.root)
    assert len(result.applied) == 3 and result.serial == 3
    return mission_repo
