"""Helpers for the execution tests: real mission repos, real agents (Python scripts), real state.

A `MissionRepo` test double is not used anywhere: `ExecRepo` writes YAML and agent programs
into a git repository under tmp_path, commits them with the git CLI, and drives the work
through `reconciler.commands.plan_apply.apply_now` (in-process) or the installed `mc` script.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml

from reconciler.commands.context import Clock, MissionContext
from reconciler.commands.plan_apply import Applied, Drive, apply_now
from state.records import Event, RunRow, TaskRow
from state.store import State

PY = sys.executable
_SCRIPT = Path(sys.executable).with_name("mc")
MC = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "cli"]
CLI_TIMEOUT_S = 60
# Fast retries so no test sleeps through a backoff for long.
FAST_RETRY = {"initial_interval": "50ms", "max_interval": "200ms"}

GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "Exec Tests",
    "GIT_AUTHOR_EMAIL": "exec-tests@example.invalid",
    "GIT_COMMITTER_NAME": "Exec Tests",
    "GIT_COMMITTER_EMAIL": "exec-tests@example.invalid",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,  # no user config (signing, hooks) leaks into the tests
}

# Every agent program starts with this: the files protocol in four names.
PRELUDE = """\
import json, os, signal, sys, time
from pathlib import Path

TASK = json.loads(Path(os.environ["MC_TASK_JSON"]).read_text())
OUT = Path(os.environ["MC_OUT_DIR"])
ATTEMPT = int(os.environ["MC_ATTEMPT"])


def result(**fields):
    Path(os.environ["MC_RESULT_JSON"]).write_text(json.dumps(fields))


def mark(path):
    \"\"\"Write this process's pid to `path` atomically (tests poll for it).\"\"\"
    tmp = Path(str(path) + ".tmp")
    tmp.write_text(str(os.getpid()))
    tmp.replace(path)

"""


def git(cwd: Path, *args: str) -> str:
    env = {**os.environ, **GIT_IDENTITY}
    proc = subprocess.run(
        ["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=False, timeout=30
    )
    assert proc.returncode == 0, f"git {' '.join(args)}: {proc.stderr}"
    return proc.stdout.strip()


def doc(kind: str, name: str, spec: dict[str, Any]) -> str:
    return yaml.safe_dump(
        {"apiVersion": "mc/v1", "kind": kind, "metadata": {"name": name}, "spec": spec},
        sort_keys=False,
    )


class ExecRepo:
    """A mission repo on disk plus the ways a test drives and inspects it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        git(root, "init", "-q")
        self.mission()

    # --- writing the desired state ---------------------------------------------------------

    def write(self, rel: str, text: str) -> Path:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return path

    def mission(self, **spec: Any) -> None:
        self.write("mission.yaml", doc("Mission", "exec-tests", spec))

    def agent(self, name: str, code: str | None = None, **spec: Any) -> None:
        """An agent running `code` (after PRELUDE) with this interpreter, unless `command`."""
        if code is not None:
            self.write(f"agents/{name}.py", PRELUDE + textwrap.dedent(code))
            spec.setdefault("command", [PY, f"{{repo}}/agents/{name}.py"])
        spec.setdefault("timeout", "20s")
        self.write(f"agents/{name}.yaml", doc("Agent", name, spec))

    def task(self, name: str, **spec: Any) -> None:
        spec.setdefault("title", f"Task {name}")
        retry = spec.setdefault("retry", {})
        for key, value in FAST_RETRY.items():
            retry.setdefault(key, value)
        self.write(f"tasks/{name}.yaml", doc("Task", name, spec))

    def commit(self, message: str = "edit") -> str:
        git(self.root, "add", "-A")
        git(self.root, "commit", "-q", "--allow-empty", "-m", message)
        return git(self.root, "rev-parse", "HEAD")

    # --- driving -----------------------------------------------------------------------------

    def apply(self, drive: Drive | None = None, clock: Clock | None = None) -> Applied:
        """`mc apply --auto-approve`, in-process: plan HEAD, apply, drive until settled."""
        ws = MissionContext.at(self.root)
        if clock is not None:
            ws = replace(ws, clock=clock)
        return apply_now(ws, "test", lambda plan: True, drive or Drive())

    def mc(self, *args: str) -> subprocess.CompletedProcess[str]:
        """The real CLI, as in CI: stdin not a terminal; wide enough that tables do not wrap."""
        return subprocess.run(
            [*MC, "-C", str(self.root), *args],
            env={**os.environ, "COLUMNS": "250"},
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            check=False,
            timeout=CLI_TIMEOUT_S,
        )

    def mc_background(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [*MC, "-C", str(self.root), *args],
            env={**os.environ, "COLUMNS": "250"},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    # --- reading the observed state ----------------------------------------------------------

    @property
    def mc_dir(self) -> Path:
        return self.root / ".mc"

    @contextmanager
    def state(self) -> Iterator[State]:
        with State.open(self.mc_dir / "state.duckdb", write=False) as state:
            yield state

    def task_row(self, name: str) -> TaskRow:
        with self.state() as state:
            rows = state.reader.tasks([name])
        assert rows, f"no task {name} in the state"
        return rows[0]

    def runs(self, task: str) -> list[RunRow]:
        """The task's runs, oldest first."""
        with self.state() as state:
            return list(reversed(state.reader.runs(task=task)))

    def events(self, kind: str) -> list[Event]:
        with self.state() as state:
            return [e for e in state.reader.events(limit=10_000) if e.kind == kind]


def wait_for(check: Callable[[], bool], within: float, what: str) -> None:
    """Poll `check` until true; fail with `what` after `within` seconds (a hang guard only)."""
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


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


def files_under(top: Path) -> list[Path]:
    return [p for p in top.rglob("*") if p.is_file() and not p.is_symlink()]
