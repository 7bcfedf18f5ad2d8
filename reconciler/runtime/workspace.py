"""The per-attempt workspace: layout, preparation, child env and drops; used by LocalExecutor.

Layout of `.mc/work/<task>/<attempt>/`: task.json (written here), result.json, cost.json,
heartbeat (written by the agent), out/ (the agent's content drops), stdout.log, stderr.log.
"""

from __future__ import annotations

import hashlib
import json
import mimetypes
import os
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from .types import Drop, LaunchRequest

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

# Python's built-in table only (not /etc/mime.types): the same answer on every machine,
# plus the types agents commonly drop that 3.11's table lacks.
_MIME = mimetypes.MimeTypes()
for _type, _ext in (
    ("text/markdown", ".md"),
    ("text/markdown", ".markdown"),
    ("application/yaml", ".yaml"),
    ("application/yaml", ".yml"),
    ("application/x-ndjson", ".jsonl"),
    ("application/toml", ".toml"),
    ("image/webp", ".webp"),
):
    _MIME.add_type(_type, _ext)


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


def _move_aside(root: Path) -> None:
    """Keep a leftover workspace (same attempt launched twice) out of the new run's way."""
    n = 1
    while (aside := root.with_name(f"{root.name}.stale-{n}")).exists():
        n += 1
    root.rename(aside)


def prepare_workspace(req: LaunchRequest) -> WorkspacePaths:
    """Create the workspace and out/, and write task.json; raises OSError on disk problems.

    A non-empty leftover directory is renamed to `<attempt>.stale-<n>` rather than reused, so
    an old result.json can never be read as this run's result.
    """
    paths = WorkspacePaths(req.workspace.absolute())  # the agent's cwd is the workspace itself
    if paths.root.is_dir() and not paths.root.is_symlink() and any(paths.root.iterdir()):
        _move_aside(paths.root)
    paths.out_dir.mkdir(parents=True, exist_ok=True)
    text = json.dumps(dict(req.task_json), indent=2, sort_keys=True, default=str)
    paths.task_json.write_text(text + "\n", encoding="utf-8")
    return paths


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
    return [v.encode() for v in values if v]


def redact_text(text: str | None, secrets: Sequence[bytes]) -> str | None:
    """Replace secret values in a message bound for the state store."""
    if text is None:
        return None
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret.decode(errors="replace"), "[redacted]")
    return text


def _regular_files(top: Path) -> Iterator[Path]:
    """Regular files under top, never following a symlink (to a file or a directory)."""
    for dirpath, dirnames, filenames in os.walk(top, followlinks=False):
        dirnames.sort()
        for name in sorted(filenames):
            path = Path(dirpath, name)
            if stat.S_ISREG(path.lstat().st_mode):
                yield path


def _sha256_nofollow(path: Path) -> tuple[str, int] | None:
    """Hash the file without following a symlink swapped in after the walk."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        digest = hashlib.file_digest(f, "sha256")
        return digest.hexdigest(), f.tell()


def collect_drops(out_dir: Path) -> tuple[Drop, ...]:
    """Every regular file the agent left under out/, hashed; symlinks are skipped."""
    try:
        if not stat.S_ISDIR(out_dir.lstat().st_mode):
            return ()
    except OSError:
        return ()
    drops = []
    for path in _regular_files(out_dir):
        hashed = _sha256_nofollow(path)
        if hashed is None:
            continue
        rel = path.relative_to(out_dir).as_posix()
        media_type = _MIME.guess_type(rel)[0] or "application/octet-stream"
        drops.append(Drop(rel, hashed[0], hashed[1], media_type, path))
    return tuple(drops)


@dataclass(frozen=True, slots=True)
class CappedRead:
    """A protocol file read under a size cap; data is set only when kind is 'ok'."""

    kind: Literal["ok", "missing", "too_big", "not_regular"]
    size: int = 0
    data: bytes = b""


def read_capped(path: Path, cap_bytes: int) -> CappedRead:
    """Read a file the agent wrote, checking the size before reading; never follows a symlink."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        return CappedRead("missing")
    except OSError:  # ELOOP: a symlink; anything else: not something we will read
        return CappedRead("not_regular")
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return CappedRead("not_regular")
        if info.st_size > cap_bytes:
            return CappedRead("too_big", info.st_size)
        data = f.read(cap_bytes + 1)  # it may have grown since fstat
        if len(data) > cap_bytes:
            return CappedRead("too_big", len(data))
        return CappedRead("ok", len(data), data)
