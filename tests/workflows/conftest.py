"""Fixtures for the workflow tests: an isolated git/mc environment and a mission repo."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from wf_harness import GIT_IDENTITY, WfRepo


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Git identity from the environment, no user/system git config, no stray MC_* settings."""
    empty = tmp_path / "empty.gitconfig"
    empty.write_text("")
    for name, value in GIT_IDENTITY.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(empty))
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    for name in ("MC_STATE", "MC_DEBUG", "FORCE_COLOR", "GIT_DIR", "GIT_WORK_TREE"):
        monkeypatch.delenv(name, raising=False)
    yield


@pytest.fixture
def repo(tmp_path: Path) -> WfRepo:
    """A mission with the worker, verifier, flaky and waiter agents; nothing committed yet."""
    return WfRepo(tmp_path / "mission")
