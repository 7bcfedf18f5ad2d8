"""Helpers for the workflows-mission tests: a committed copy of the mission, the real `mc`.

The isolated environment, the `mc` command and the repo copy come from `helpers`.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from helpers.git import isolated_environ
from helpers.mc import MC
from helpers.mission_repo import copy_repo

from state.store import State

MISSION = Path(__file__).resolve().parents[2] / "examples" / "workflows-mission"
SAMPLE_APP = MISSION / "sample-app"
TIMEOUT_S = 120
RUNS = ("add-word-count", "fix-empty-average", "audit-textstats", "review-textstats")


@dataclass(frozen=True)
class Mission:
    """A committed copy of the mission and the environment every command runs in."""

    root: Path
    env: dict[str, str]
    _seen: dict[tuple[str, ...], Any] = field(default_factory=dict, compare=False, repr=False)

    def run(self, *argv: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            argv,
            cwd=cwd or self.root,
            env=self.env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            check=False,
            timeout=TIMEOUT_S,
        )

    def git(self, *args: str) -> str:
        proc = self.run("git", *args)
        assert proc.returncode == 0, f"git {' '.join(args)}: {proc.stderr}"
        return proc.stdout

    def mc(self, *args: str) -> str:
        proc = self.run(*MC, *args)
        assert proc.returncode == 0, f"mc {' '.join(args)} exited {proc.returncode}:\n{proc.stderr}"
        return proc.stdout

    def mc_json(self, *args: str) -> Any:
        return json.loads(self.mc(*args, "--json"))

    def read(self, *args: str) -> Any:
        """`mc ARGS --json`, asked once: for reads of a state no test changes afterwards."""
        if args not in self._seen:
            self._seen[args] = self.mc_json(*args)
        return self._seen[args]

    def drop_text(self, task: str, path: str) -> str:
        """The stored content of a task's content drop (`mc drops TASK --json`)."""
        found = [d for d in self.read("drops", task) if d["path"] == path]
        assert found, f"{task} has no drop {path}"
        return Path(found[0]["file"]).read_text()

    def outputs(self, task: str) -> dict[str, Any]:
        """A step's structured outputs, read from the state file (no CLI shows a middle step's)."""
        with State.open(self.root / ".mc" / "state.duckdb", write=False) as state:
            (row,) = state.reader.tasks([task])
        return row.outputs or {}


def copy_mission(root: Path, env: dict[str, str]) -> Mission:
    """The example as a fresh, committed git repo (what a user would push)."""
    return Mission(copy_repo(MISSION, root, "workflows mission", env), env)


def tree_digest(root: Path) -> str:
    """A digest over every file's path and bytes under root (caches included, on purpose)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def patched_app(mission: Mission, run: str, dest: Path) -> Path:
    """A copy of the original sample app with the run's pr.diff applied by `git apply`."""
    diff = dest.with_suffix(".diff")
    diff.write_text(mission.drop_text(f"{run}.pr", "pr.diff"))
    shutil.copytree(SAMPLE_APP, dest, ignore=shutil.ignore_patterns("__pycache__"))
    proc = mission.run("git", "apply", "--verbose", str(diff), cwd=dest)
    assert proc.returncode == 0, proc.stderr
    return dest


def python(app: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run python (no bytecode written) in the app folder."""
    return subprocess.run(
        [sys.executable, "-B", *args],
        cwd=app,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def run_agent(agent: str, task: dict[str, Any], workspace: Path) -> dict[str, Any]:
    """Run one of the mission's agent programs on a task.json, as mc would; its result.json."""
    (workspace / "out").mkdir(parents=True)
    (workspace / "task.json").write_text(json.dumps(task))
    env = {
        **os.environ,
        "MC_WORKSPACE": str(workspace),
        "MC_TASK_JSON": str(workspace / "task.json"),
        "MC_RESULT_JSON": str(workspace / "result.json"),
        "MC_OUT_DIR": str(workspace / "out"),
    }
    program = MISSION / "agents" / f"{agent}.py"
    proc = subprocess.run(
        [sys.executable, "-B", str(program)],
        cwd=workspace,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    result: dict[str, Any] = json.loads((workspace / "result.json").read_text())
    return result


# --- fixtures (exposed by conftest.py) ---------------------------------------------------------


@pytest.fixture(scope="module")
def sample_digest() -> str:
    """The sample app's digest before anything ran."""
    return tree_digest(SAMPLE_APP)


@pytest.fixture(scope="module")
def applied(tmp_path_factory: pytest.TempPathFactory, sample_digest: str) -> Mission:
    """The mission copied into a fresh git repo and applied: its four runs driven to the end."""
    home = tmp_path_factory.mktemp("workflows")
    mission = copy_mission(home / "mission", isolated_environ(home))
    out = mission.mc("apply", "--auto-approve")
    assert "Apply complete." in out, out
    return mission


@pytest.fixture
def fresh(tmp_path: Path) -> Mission:
    """A committed copy of the mission, not applied."""
    return copy_mission(tmp_path / "mission", isolated_environ(tmp_path))
