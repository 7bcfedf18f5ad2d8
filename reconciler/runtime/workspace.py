"""The per-attempt workspace: layout, preparation, child env, capped reads; used by spawn.py.

Layout of `.mc/work/<task>/<attempt>/`: task.json (written here), result.json, cost.json,
heartbeat (written by the agent), out/ (the agent's content drops), stdout.log, stderr.log.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .nofollow import (
    CONTROL_DIR,
    CappedRead,
    exists_at,
    open_dir_at,
    open_file_at,
    opened_dir,
    read_whole,
)
from .types import ExecutorError, LaunchRequest

# Inherited from the reconciler's own environment; everything else (tokens, keys) stays out.
DEFAULT_INHERITED_ENV: tuple[str, ...] = (
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "SHELL",
    "LANG",
    "LANGUAGE",
    "LC_ALL",
    "LC_CTYPE",
    "TZ",
    "TMPDIR",
    "TERM",
    "PYTHONPATH",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
)


@dataclass(frozen=True, slots=True)
class WorkspacePaths:
    """Where each file of the agent protocol lives inside one workspace."""

    root: Path

    @property
    def out_dir(self) -> Path:
        return self.root / "out"

    @property
    def task_json(self) -> Path:
        return self.root / "task.json"

    @property
    def result_json(self) -> Path:
        return self.root / "result.json"

    @property
    def cost_json(self) -> Path:
        return self.root / "cost.json"

    @property
    def heartbeat(self) -> Path:
        return self.root / "heartbeat"

    @property
    def stdout_log(self) -> Path:
        return self.root / "stdout.log"

    @property
    def stderr_log(self) -> Path:
        return self.root / "stderr.log"


def workspace_root(workspace: Path) -> Path:
    """The absolute workspace, which must be `.mc/work/<task>/<attempt>` (the drops store,
    `.mc/drops`, is found from it, and nothing from `.mc` down is followed)."""
    root = workspace.absolute()
    parts = root.parts
    if len(parts) < 5 or parts[-4:-2] != (CONTROL_DIR, "work") or ".." in parts:
        raise ExecutorError(f"workspace {workspace} is not .mc/work/<task>/<attempt>")
    return root


def prepare_workspace(req: LaunchRequest) -> WorkspacePaths:
    """Create the workspace and out/, and write task.json, never following a symlink from
    `.mc` down. Raises PlantedLink for a link (or non-directory) in the way, OSError for disk
    problems.

    A non-empty leftover directory is renamed to `<attempt>.stale-<n>` rather than reused, so
    an old result.json can never be read as this run's result.
    """
    paths = WorkspacePaths(workspace_root(req.workspace))  # the agent's cwd is the workspace
    name = paths.root.name
    text = json.dumps(dict(req.task_json), indent=2, sort_keys=True, default=str) + "\n"
    with opened_dir(paths.root.parent, create=True) as task_fd:
        _move_aside_if_used(task_fd, name, paths.root)
        ws_fd = open_dir_at(task_fd, name, paths.root, create=True)
        try:
            os.close(open_dir_at(ws_fd, "out", paths.out_dir, create=True))
            flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
            with os.fdopen(open_file_at(ws_fd, "task.json", flags, paths.task_json), "w") as f:
                f.write(text)
        finally:
            os.close(ws_fd)
    return paths


def _move_aside_if_used(task_fd: int, name: str, root: Path) -> None:
    """Keep a leftover workspace (same attempt launched twice) out of the new run's way."""
    try:
        fd = open_dir_at(task_fd, name, root, create=False)
    except FileNotFoundError:
        return
    try:
        with os.scandir(fd) as entries:
            if next(entries, None) is None:
                return
    finally:
        os.close(fd)
    n = 1
    while exists_at(task_fd, aside := f"{name}.stale-{n}"):
        n += 1
    os.rename(name, aside, src_dir_fd=task_fd, dst_dir_fd=task_fd)


def child_env(
    req: LaunchRequest, paths: WorkspacePaths, inherit: Sequence[str] = DEFAULT_INHERITED_ENV
) -> dict[str, str]:
    """The agent's environment: an allow-list of ours, then req.env, then the MC_* contract."""
    env = {name: os.environ[name] for name in inherit if name in os.environ}
    env.update(req.env)
    env.update(
        MC_RUN_ID=req.run_id,
        MC_TASK=req.task,
        MC_ATTEMPT=str(req.attempt),
        MC_WORKSPACE=str(paths.root),
        MC_TASK_JSON=str(paths.task_json),
        MC_RESULT_JSON=str(paths.result_json),
        MC_COST_JSON=str(paths.cost_json),
        MC_OUT_DIR=str(paths.out_dir),
        MC_HEARTBEAT=str(paths.heartbeat),
    )
    return env


def secrets_to_redact(req: LaunchRequest) -> list[bytes]:
    """The byte strings to scrub from logs (see LaunchRequest.secret_values)."""
    values = req.secret_values
    if values is None:
        values = tuple(v for v in req.env.values() if len(v) >= 8)
    return [v.encode("utf-8", "surrogateescape") for v in values if v]


def read_capped(path: Path, cap_bytes: int) -> CappedRead:
    """Read a file the agent wrote, checking the size before reading; never follows a symlink
    and never blocks on a FIFO (nofollow.read_whole)."""
    return read_whole(path, cap_bytes)
