"""Fixtures for the core tests: scaffolded mission repos (git isolation: tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from core_harness import GitRepo, apply_head

from reconciler.commands.init import scaffold


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
