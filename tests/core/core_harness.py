"""Helpers for the core tests: real git repos made with the git CLI and the real `mc` CLI."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from reconciler.commands.mission import utcnow
from reconciler.plan.apply import ApplyResult, apply_plan
from reconciler.plan.build import build_plan
from reconciler.plan.codec import plan_to_json
from reconciler.plan.observed import observe
from reconciler.repo.source import MissionRepo
from state.store import State

_SCRIPT = Path(sys.executable).with_name("mc")
# The installed console script is what users run; `python -m cli` is the same entry point.
MC = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "cli"]
CLI_TIMEOUT_S = 60


def git(cwd: Path, *args: str) -> str:
    proc = subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, check=False, timeout=30
    )
    assert proc.returncode == 0, f"git {' '.join(args)}: {proc.stderr}"
    return proc.stdout.strip()


class GitRepo:
    """A mission repo on disk, edited with plain file writes and committed with `git`."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def write(self, rel: str, content: str | bytes) -> Path:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
        return path

    def read(self, rel: str) -> str:
        return (self.root / rel).read_text()

    def replace(self, rel: str, old: str, new: str) -> None:
        text = self.read(rel)
        assert old in text, f"{old!r} not in {rel}"
        self.write(rel, text.replace(old, new))

    def remove(self, rel: str) -> None:
        (self.root / rel).unlink()

    def commit(self, message: str = "edit") -> str:
        git(self.root, "add", "-A")
        git(self.root, "commit", "-q", "--allow-empty", "-m", message)
        return self.head()

    def head(self) -> str:
        return git(self.root, "rev-parse", "HEAD")

    def git(self, *args: str) -> str:
        return git(self.root, *args)

    @property
    def state_file(self) -> Path:
        return self.root / ".mc" / "state.duckdb"


def mc(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the real CLI; stdin is not a terminal, as in CI."""
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


def apply_head(root: Path, state_path: Path | None = None) -> ApplyResult:
    """Plan HEAD and apply every action the policy allows, in-process (setup, not under test)."""
    repo = MissionRepo(root, state_path)
    repo.ensure_mc_ignored()
    desired = repo.desired("HEAD")
    with State.open(repo.state_path, write=True) as state:
        plan = build_plan(desired, observe(state.reader, desired), utcnow())
        return apply_plan(plan, desired, state, utcnow(), "test")


def save_head_plan(root: Path, out: Path) -> dict[str, Any]:
    """What `mc plan --out FILE` writes, made in-process; returns the plan as JSON."""
    repo = MissionRepo(root)
    desired = repo.desired("HEAD")
    with State.open(repo.state_path, write=False) as state:
        body = plan_to_json(build_plan(desired, observe(state.reader, desired), utcnow()))
    out.write_text(json.dumps(body))
    return body


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def flat(text: str) -> str:
    """Whitespace-normalised text, so assertions do not depend on terminal width."""
    return " ".join(text.split())


def agent_yaml(name: str, command: str = "[python3, agent.py]", extra: str = "") -> str:
    return (
        f"apiVersion: mc/v1\nkind: Agent\nmetadata: {{name: {name}}}\n"
        f"spec:\n  capabilities: [summarize]\n  command: {command}\n{extra}"
    )


def task_yaml(name: str, agent: str = "summarizer", prompt: str = "Do it", extra: str = "") -> str:
    return (
        f"apiVersion: mc/v1\nkind: Task\nmetadata: {{name: {name}}}\n"
        f"spec:\n  title: {name}\n  agent: {agent}\n  prompt: {prompt}\n{extra}"
    )
