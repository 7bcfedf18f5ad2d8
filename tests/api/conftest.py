"""Fixtures for the dashboard tests: one real mission applied once per session, served read-only."""

from __future__ import annotations

import shutil
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from dash_harness import SERVE_STATUS, Mission, build_mission, git_env, make_app

with warnings.catch_warnings():  # starlette's TestClient warns that httpx is deprecated for it
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient


@pytest.fixture(scope="session")
def mission(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mission]:
    """Applied by real agents: DONE tasks with drops, a FAILED one, a pending approval, a run."""
    with git_env():
        yield build_mission(tmp_path_factory.mktemp("dash") / "mission")


@pytest.fixture(scope="session")
def client(mission: Mission) -> Iterator[TestClient]:
    """The dashboard over the closed state file, each request opening it read-only."""
    with TestClient(make_app(mission, status=lambda: dict(SERVE_STATUS))) as c:
        yield c


@pytest.fixture
def plain_client(mission: Mission) -> Iterator[TestClient]:
    """The dashboard without serve-loop facts (as when served by something else)."""
    with TestClient(make_app(mission)) as c:
        yield c


@pytest.fixture
def state_copy(mission: Mission, tmp_path: Path) -> Path:
    """A private copy of the applied state, for tests that write to it or grow it."""
    target = tmp_path / "state.duckdb"
    shutil.copy(mission.state_file, target)
    wal = mission.state_file.with_name(mission.state_file.name + ".wal")
    if wal.exists():
        shutil.copy(wal, target.with_name(target.name + ".wal"))
    return target
