"""Fixtures for the workflows-mission tests: the mission applied once, shared by the module."""

from __future__ import annotations

from pathlib import Path

import pytest
from workflow_harness import SAMPLE_APP, Mission, copy_mission, isolated_env, tree_digest


@pytest.fixture(scope="module")
def sample_digest() -> str:
    """The sample app's digest before anything ran."""
    return tree_digest(SAMPLE_APP)


@pytest.fixture(scope="module")
def applied(tmp_path_factory: pytest.TempPathFactory, sample_digest: str) -> Mission:
    """The mission copied into a fresh git repo and applied: its four runs driven to the end."""
    home = tmp_path_factory.mktemp("workflows")
    mission = copy_mission(home / "mission", isolated_env(home))
    out = mission.mc("apply", "--auto-approve")
    assert "Apply complete." in out, out
    return mission


@pytest.fixture
def fresh(tmp_path: Path) -> Mission:
    """A committed copy of the mission, not applied."""
    return copy_mission(tmp_path / "mission", isolated_env(tmp_path))
