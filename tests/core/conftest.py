"""Fixtures for the core tests: an isolated git/mc environment and scaffolded mission repos."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from core_harness import GitRepo, apply_head

from reconciler.commands.init import scaffold


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Git identity from the environment, no user/system git config, no stray MC_* settings."""
    empty = tmp_path / "empty.gitconfig"
    empty.write_text("")
    for who in ("AUTHOR", "COMMITTER"):
        monkeypatch.setenv(f"GIT_{who}_NAME", "Core Tests")
        monkeypatch.setenv(f"GIT_{who}_EMAIL", "core-tests@example.invalid")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(empty))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))  # never find an outer repo
    for name in ("MC_STATE", "MC_DEBUG", "FORCE_COLOR", "GIT_DIR", "GIT_WORK_TREE"):
        monkeypatch.delenv(name, raising=False)
    yield


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
