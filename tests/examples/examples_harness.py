"""Helpers for the example tests: copy an example into a fresh git repo, run the real `mc`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reconciler.engine.launch import Paths
from state.records import TaskRow
from state.store import State

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
_SCRIPT = Path(sys.executable).with_name("mc")
MC = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "cli"]
CLI_TIMEOUT_S = 120


def mission_dirs() -> list[Path]:
    """Every folder of examples/ that is a mission repo."""
    return sorted(p.parent for p in EXAMPLES.glob("*/mission.yaml"))


def git(cwd: Path, *args: str) -> str:
    proc = subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, check=False, timeout=30
    )
    assert proc.returncode == 0, f"git {' '.join(args)}: {proc.stderr}"
    return proc.stdout.strip()


def commit_all(root: Path, message: str) -> str:
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", message)
    return git(root, "rev-parse", "HEAD")


def make_repo(files: dict[str, str | Path], root: Path) -> Path:
    """A committed mission repo from {relative path: text, or a file to copy}."""
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, Path):
            shutil.copyfile(content, path)
        else:
            path.write_text(content)
    git(root, "init", "-q")
    commit_all(root, "mission")
    return root


def copy_example(src: Path, root: Path) -> Path:
    """The example folder as a fresh, committed git repo (what a user would push)."""
    shutil.copytree(src, root, ignore=shutil.ignore_patterns("__pycache__", ".mc"))
    git(root, "init", "-q")
    commit_all(root, f"{src.name} example")
    return root


def mc(*args: str, cwd: Path, env: dict[str, str] | None = None) -> str:
    """Run the real CLI (stdin is not a terminal, as in CI); assert it succeeded."""
    proc = run_mc(*args, cwd=cwd, env=env)
    assert proc.returncode == 0, f"mc {' '.join(args)} exited {proc.returncode}:\n{proc.stderr}"
    return proc.stdout


def run_mc(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*MC, *args],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=False,
        timeout=CLI_TIMEOUT_S,
    )


def mc_json(*args: str, cwd: Path, env: dict[str, str] | None = None) -> Any:
    return json.loads(mc(*args, "--json", cwd=cwd, env=env))


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


def flat(text: str) -> str:
    """Whitespace-normalised text, so assertions do not depend on terminal width."""
    return " ".join(text.split())


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


def files_under(top: Path) -> list[Path]:
    return [p for p in top.rglob("*") if p.is_file() and not p.is_symlink()]
