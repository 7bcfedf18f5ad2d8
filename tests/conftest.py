"""Fixtures for every test folder: each test runs with an isolated git identity and config."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers.git import isolate


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Git identity from the environment, no user/system git config, no git repo found above
    this test's tmp_path, no stray MC_* settings."""
    isolate(monkeypatch, tmp_path)
    yield
