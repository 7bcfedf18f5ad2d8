"""Fixtures for the execution tests: an isolated git/mc environment and an empty mission repo."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from exec_harness import GIT_IDENTITY, ExecRepo


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Git identity from the environment, no user/system git config, no stray MC_* settings."""
    for name, value in GIT_IDENTITY.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    for name in ("MC_STATE", "MC_DEBUG", "FORCE_COLOR", "GIT_DIR", "GIT_WORK_TREE"):
        monkeypatch.delenv(name, raising=False)
    yield


@pytest.fixture
def repo(tmp_path: Path) -> ExecRepo:
    """An empty mission (no agents, no tasks) in a fresh git repository; not committed yet."""
    return ExecRepo(tmp_path / "mission")
