"""Fixtures for the example tests: an isolated git identity and no stray mc settings."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Git identity from the environment, no user/system git config, no stray MC_* settings."""
    empty = tmp_path / "empty.gitconfig"
    empty.write_text("")
    for who in ("AUTHOR", "COMMITTER"):
        monkeypatch.setenv(f"GIT_{who}_NAME", "Example Tests")
        monkeypatch.setenv(f"GIT_{who}_EMAIL", "example-tests@example.invalid")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(empty))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    for name in ("MC_STATE", "MC_DEBUG", "FORCE_COLOR", "GIT_DIR", "GIT_WORK_TREE"):
        monkeypatch.delenv(name, raising=False)
    yield
