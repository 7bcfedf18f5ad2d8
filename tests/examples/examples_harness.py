"""Helpers for the example tests: copy an example into a fresh git repo, run the real `mc`,
read what it left; stand-ins for LLM command-line tools.

Git, the `mc` runner and the repo builders come from `helpers`; they are re-exported here for
the tests that import them from this module.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from helpers.mc import flat as flat
from helpers.mc import mc_json as mc_json
from helpers.mc import mc_ok
from helpers.mission_repo import copy_repo
from helpers.mission_repo import files_under as files_under
from helpers.mission_repo import make_repo as make_repo

from reconciler.engine.launch import Paths
from state.records import TaskRow
from state.store import State

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def mission_dirs() -> list[Path]:
    """Every folder of examples/ that is a mission repo."""
    return sorted(p.parent for p in EXAMPLES.glob("*/mission.yaml"))


def copy_example(src: Path, root: Path) -> Path:
    """The example folder as a fresh, committed git repo (what a user would push)."""
    return copy_repo(src, root, f"{src.name} example")


def mc(*args: str, cwd: Path, env: Mapping[str, str] | None = None) -> str:
    """Run the real CLI (stdin is not a terminal, as in CI); assert it succeeded; its stdout."""
    return mc_ok(*args, cwd=cwd, env=env)


def tasks(root: Path) -> dict[str, TaskRow]:
    """The observed tasks, read from the state file once no `mc` process holds it."""
    return snapshot(root).tasks


@dataclass(frozen=True)
class Snapshot:
    """Observed state read in-process (cheaper than one `mc` call per question)."""

    tasks: dict[str, TaskRow]
    memory: dict[str, dict[str, Any]]  # scope ("agent:writer", "task:x") -> key -> value
    drops: dict[str, dict[str, str]]  # task -> drop path -> stored text (latest run wins)
    runs: int


def snapshot(root: Path) -> Snapshot:
    paths = Paths(root, root / ".mc")
    with State.open(root / ".mc" / "state.duckdb", write=False) as state:
        reader = state.reader
        drops: dict[str, dict[str, str]] = {}
        for d in reader.drops():
            drops.setdefault(d.task, {})[d.path] = paths.drop_file(d.sha256).read_text()
        return Snapshot(
            tasks={t.name: t for t in reader.tasks()},
            memory=reader.memory(),
            drops=drops,
            runs=len(reader.runs()),
        )


def runs_of(root: Path, task: str) -> list[dict[str, Any]]:
    """`mc runs TASK --json`, oldest attempt first."""
    found: list[dict[str, Any]] = mc_json("runs", task, cwd=root)
    return sorted(found, key=lambda r: r["attempt"])


# --- stand-ins for LLM command-line tools ----------------------------------------------------

AGENTS = EXAMPLES / "agents"
PYTHON = os.path.realpath(sys.executable)
MISSION_YAML = """\
apiVersion: mc/v1
kind: Mission
metadata: {name: llm-agents}
spec:
  budget: {daily_usd: 5}
"""


def restricted_path(bin_dir: Path, stand_ins: dict[str, str]) -> str:
    """A PATH holding only git, python3 and the given stand-in scripts, so a real `claude` or
    `codex` installed on this machine can never be called by a test."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    git_bin = shutil.which("git")
    assert git_bin is not None
    (bin_dir / "git").symlink_to(git_bin)
    (bin_dir / "python3").symlink_to(PYTHON)
    bwrap = shutil.which("bwrap")  # mc itself finds the sandbox on this PATH
    if bwrap is not None:
        (bin_dir / "bwrap").symlink_to(bwrap)
    for name, source in stand_ins.items():
        script = bin_dir / name
        script.write_text(f"#!{PYTHON}\n{source}")
        script.chmod(0o755)
    return str(bin_dir)


def task_yaml(name: str, agent: str, prompt: str, max_attempts: int = 1) -> str:
    return f"""\
apiVersion: mc/v1
kind: Task
metadata: {{name: {name}}}
spec:
  title: {name}
  prompt: {json.dumps(prompt)}
  agent: {agent}
  retry: {{max_attempts: {max_attempts}, initial_interval: 100ms, jitter: 0}}
"""
