"""A mission repo on disk for tests: files written, committed with `git`, state read back."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from helpers.agents import PRELUDE, PY, program, rw, with_interpreter
from helpers.git import git
from helpers.mc import WIDE, run_mc, start_mc
from helpers.yaml_docs import doc
from reconciler.commands.context import Clock, MissionContext
from reconciler.commands.plan_apply import Applied, Drive, apply_now
from state.records import Event, RunRow, TaskRow
from state.store import State


class GitRepo:
    """A mission repo on disk, edited with plain file writes and committed with `git`.

    Folder harnesses subclass it with their own defaults (which agents, which retry policy).
    """

    def __init__(self, root: Path) -> None:
        self.root = root

    def init(self, branch: str | None = None) -> None:
        """Make `root` a fresh git repository."""
        self.root.mkdir(parents=True, exist_ok=True)
        git(self.root, "init", "-q", *(["-b", branch] if branch else []))

    # --- writing the desired state ---------------------------------------------------------

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

    def write_doc(
        self,
        rel: str,
        kind: str,
        name: str,
        spec: dict[str, Any],
        labels: dict[str, str] | None = None,
    ) -> str:
        """One mission document as YAML at `rel`; returns `rel`."""
        self.write(rel, doc(kind, name, spec, labels))
        return rel

    @property
    def scratch(self) -> Path:
        """A directory beside the repo that every test agent may write (ledgers, markers, pid
        files): the sandbox shows an agent nothing else of the host outside its workspace."""
        return self.root.with_name(f"{self.root.name}-scratch")

    def agent(self, name: str, **spec: Any) -> None:
        """An Agent document (a 20 s timeout unless `spec` says otherwise). It runs sandboxed
        (the default) and may read this interpreter (PY) and write `scratch`, besides the
        `mounts` it declares."""
        spec.setdefault("timeout", "20s")
        self.scratch.mkdir(parents=True, exist_ok=True)
        spec = {**spec, "mounts": [rw(self.scratch), *spec.get("mounts", [])]}
        self.write_doc(f"agents/{name}.yaml", "Agent", name, with_interpreter(spec))

    def task(self, name: str, **spec: Any) -> None:
        """A Task document, titled after its name, tried once unless `spec` says otherwise."""
        spec.setdefault("title", f"Task {name}")
        spec.setdefault("retry", {"max_attempts": 1})
        self.write_doc(f"tasks/{name}.yaml", "Task", name, spec)

    def agent_program(self, name: str, code: str, prelude: str = PRELUDE) -> list[str]:
        """Write agents/NAME.py (the prelude, then `code`); the command that runs it."""
        self.write(f"agents/{name}.py", program(code, prelude))
        return [PY, f"{{repo}}/agents/{name}.py"]

    # --- committing ------------------------------------------------------------------------

    def git(self, *args: str, env: Mapping[str, str] | None = None) -> str:
        return git(self.root, *args, env=env)

    def commit(self, message: str = "edit") -> str:
        """Commit every change (an empty commit when there is none); the new HEAD."""
        self.git("add", "-A")
        self.git("commit", "-q", "--allow-empty", "-m", message)
        return self.head()

    def head(self) -> str:
        return self.git("rev-parse", "HEAD")

    # --- driving ---------------------------------------------------------------------------

    def context(self, clock: Clock | None = None) -> MissionContext:
        """What a command run in this repo gets (with `clock` as its clock, if given)."""
        ctx = MissionContext.at(self.root)
        return replace(ctx, clock=clock) if clock is not None else ctx

    def apply_now(self, drive: Drive | None, clock: Clock | None = None) -> Applied:
        """`mc apply --auto-approve`, in-process: plan HEAD, apply, drive when `drive` is given."""
        return apply_now(self.context(clock), "test", lambda plan: True, drive)

    def mc(
        self, *args: str, env: Mapping[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """The real CLI on this repo, as in CI; wide enough that tables do not wrap."""
        return run_mc("-C", str(self.root), *args, env=self.cli_env(env))

    def mc_json(self, *args: str) -> Any:
        proc = self.mc(*args, "--json")
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout)

    def mc_background(self, *args: str) -> subprocess.Popen[str]:
        return start_mc("-C", str(self.root), *args, env=self.cli_env())

    @staticmethod
    def cli_env(env: Mapping[str, str] | None = None) -> dict[str, str]:
        return {**os.environ, **WIDE, **(env or {})}

    # --- reading the observed state --------------------------------------------------------

    @property
    def mc_dir(self) -> Path:
        return self.root / ".mc"

    @property
    def state_file(self) -> Path:
        return self.mc_dir / "state.duckdb"

    @contextmanager
    def state(self) -> Iterator[State]:
        """The state file, read-only (once no `mc` process holds it for writing)."""
        with State.open(self.state_file, write=False) as state:
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

    def events(self, kind: str, subject: str | None = None) -> list[Event]:
        with self.state() as state:
            found = state.reader.events(limit=100_000)
        return [e for e in found if e.kind == kind and (subject is None or e.subject == subject)]


def commit_all(root: Path, message: str) -> str:
    """Commit every file under `root`; the new HEAD."""
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", message)
    return git(root, "rev-parse", "HEAD")


def make_repo(files: Mapping[str, str | Path], root: Path) -> Path:
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


def copy_repo(src: Path, root: Path, message: str, env: Mapping[str, str] | None = None) -> Path:
    """A folder (e.g. an example) as a fresh, committed git repo (what a user would push)."""
    shutil.copytree(src, root, ignore=shutil.ignore_patterns("__pycache__", ".mc"))
    git(root, "init", "-q", env=env)
    git(root, "add", "-A", env=env)
    git(root, "commit", "-q", "-m", message, env=env)
    return root


def files_under(top: Path) -> list[Path]:
    """Every regular file below `top` (links left out)."""
    return [p for p in top.rglob("*") if p.is_file() and not p.is_symlink()]
