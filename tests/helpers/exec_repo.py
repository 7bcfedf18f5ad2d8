"""Helpers for the execution tests: real mission repos, real agents (Python scripts), real state.

A `MissionRepo` test double is not used anywhere: `ExecRepo` writes YAML and agent programs
into a git repository under tmp_path, commits them with the git CLI, and drives the work
through `reconciler.commands.plan_apply.apply_now` (in-process) or the installed `mc` script.
Git, YAML, the `mc` runner, waiting and the repo builder come from `helpers` (re-exported here
for the tests that import them from this module).
"""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import pytest

from helpers.agents import PRELUDE as BASE_PRELUDE
from helpers.agents import PY as PY
from helpers.git import GIT_IDENTITY as GIT_IDENTITY
from helpers.git import git as git
from helpers.mc import MC as MC
from helpers.mission_repo import GitRepo
from helpers.mission_repo import files_under as files_under
from helpers.waiting import wait_for as wait_for
from helpers.yaml_docs import doc as doc
from reconciler.commands.context import Clock
from reconciler.commands.plan_apply import Applied, Drive

# Fast retries so no test sleeps through a backoff for long.
FAST_RETRY = {"initial_interval": "50ms", "max_interval": "200ms"}

# Every agent program starts with this: the files protocol, and `mark` for tests that poll.
PRELUDE = (
    BASE_PRELUDE
    + '''
def mark(path, pid=None):
    """Write a pid (this process's by default) and the run id to `path` atomically; tests
    poll for it and find the host pid with helpers.sandboxed (the sandbox has its own pids)."""
    tmp = Path(str(path) + ".tmp")
    tmp.write_text(f"{pid or os.getpid()} {os.environ['MC_RUN_ID']}")
    tmp.replace(path)

'''
)


class ExecRepo(GitRepo):
    """A mission repo on disk plus the ways a test drives and inspects it."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.init()
        self.mission()

    def mission(self, **spec: Any) -> None:
        self.write_doc("mission.yaml", "Mission", "exec-tests", spec)

    def agent(self, name: str, code: str | None = None, **spec: Any) -> None:
        """An agent running `code` (after PRELUDE) with this interpreter, unless `command`."""
        if code is not None:
            spec.setdefault("command", self.agent_program(name, code, PRELUDE))
        super().agent(name, **spec)

    def task(self, name: str, **spec: Any) -> None:
        """A Task with fast retries (the default retry policy otherwise)."""
        retry = spec.setdefault("retry", {})
        for key, value in FAST_RETRY.items():
            retry.setdefault(key, value)
        super().task(name, **spec)

    def apply(self, drive: Drive | None = None, clock: Clock | None = None) -> Applied:
        """`mc apply --auto-approve`, in-process: plan HEAD, apply, drive until settled."""
        return self.apply_now(drive or Drive(), clock)


def process_alive(pid: int) -> bool:
    """True while pid names a live process (a zombie counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    state = stat.rsplit(")", 1)[1].split()[0]
    return state not in ("Z", "X")


def kill_if_alive(pid: int) -> None:
    """Clean-up for a test that failed half-way: never leave an agent running."""
    if process_alive(pid):
        try:
            os.killpg(pid, signal.SIGKILL)
        except OSError:
            os.kill(pid, signal.SIGKILL)


@pytest.fixture
def repo(tmp_path: Path) -> ExecRepo:
    """An empty mission (no agents, no tasks) in a fresh git repository; not committed yet."""
    return ExecRepo(tmp_path / "mission")
