"""Safe reads of the files the dashboard shows: log tails, task.json, heartbeats, content drops.

Every path comes from the state (a run's workspace, a drop's sha256), so every path is checked
to lie inside `.mc/work` or `.mc/drops` before it is opened; nothing else is ever read.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from reconciler.engine.launch import Paths

SHA256_HEX = re.compile(r"[0-9a-f]{64}")
LOG_TAIL_BYTES = 16 * 1024
INLINE_TEXT_BYTES = 64 * 1024
TASK_JSON_BYTES = 1024 * 1024

# Shown in the page as images, served with their own type.
IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp", "image/svg+xml"})
# Shown in the page as text, served as text/plain so a browser never renders them as HTML.
TEXT_TYPES = frozenset(
    {
        "application/json",
        "application/yaml",
        "application/x-ndjson",
        "application/toml",
        "application/xml",
        "application/x-yaml",
    }
)
DropKind = Literal["image", "markdown", "text", "file"]


def _inside(path: Path, root: Path) -> Path | None:
    """`path` resolved, if it is a regular file under `root` (symlinks out are refused)."""
    try:
        resolved = path.resolve(strict=True)
    except (OSError, RuntimeError):
        return None
    if not resolved.is_relative_to(root.resolve()) or not resolved.is_file():
        return None
    return resolved


def _read_tail(path: Path, limit: int) -> tuple[str, bool]:
    with path.open("rb") as fh:
        fh.seek(0, 2)
        size = fh.tell()
        fh.seek(max(0, size - limit))
        data = fh.read(limit)
    return data.decode("utf-8", "replace"), size > limit


def _read_head(path: Path, limit: int) -> tuple[str, bool]:
    with path.open("rb") as fh:
        data = fh.read(limit + 1)
    return data[:limit].decode("utf-8", "replace"), len(data) > limit


@dataclass(frozen=True, slots=True)
class LogTail:
    text: str
    truncated: bool  # only the end of a longer log is shown


def workspace_file(paths: Paths, workspace: str | None, name: str) -> Path | None:
    """A file of a run's workspace, if the workspace lies under .mc/work and the file exists."""
    if not workspace:
        return None
    return _inside(Path(workspace) / name, paths.work)


def log_tail(paths: Paths, workspace: str | None, name: str) -> LogTail | None:
    path = workspace_file(paths, workspace, name)
    if path is None:
        return None
    try:
        text, cut = _read_tail(path, LOG_TAIL_BYTES)
    except OSError:
        return None
    return LogTail(text, cut)


def rendered_prompt(paths: Paths, workspace: str | None) -> str | None:
    """The prompt the agent was actually given (task.json of that run)."""
    path = workspace_file(paths, workspace, "task.json")
    if path is None:
        return None
    try:
        text, cut = _read_head(path, TASK_JSON_BYTES)
        data = None if cut else json.loads(text)
    except (OSError, ValueError):
        return None
    prompt = data.get("prompt") if isinstance(data, dict) else None
    return prompt if isinstance(prompt, str) else None


def heartbeat_at(paths: Paths, workspace: str | None) -> datetime | None:
    """When the agent last touched its heartbeat file (naive UTC, as the state stores time)."""
    path = workspace_file(paths, workspace, "heartbeat")
    if path is None:
        return None
    try:
        mtime = path.stat().st_mtime
    except OSError:
        return None
    return datetime.fromtimestamp(mtime, UTC).replace(tzinfo=None)


# --- content drops ---------------------------------------------------------------------------


def drop_kind(path: str, media_type: str) -> DropKind:
    if media_type in IMAGE_TYPES:
        return "image"
    if media_type == "text/markdown" or path.lower().endswith((".md", ".markdown")):
        return "markdown"
    if media_type.startswith("text/") or media_type in TEXT_TYPES:
        return "text"
    return "file"


def drop_file(paths: Paths, sha256: str) -> Path | None:
    """The stored file of a drop, only for a well-formed sha256 inside .mc/drops."""
    if not SHA256_HEX.fullmatch(sha256):
        return None
    return _inside(paths.drop_file(sha256), paths.drops)


def drop_text(paths: Paths, sha256: str) -> tuple[str, bool] | None:
    """The start of a text drop for showing inline, and whether it was cut."""
    path = drop_file(paths, sha256)
    if path is None:
        return None
    try:
        return _read_head(path, INLINE_TEXT_BYTES)
    except OSError:
        return None


def served_type(kind: DropKind, media_type: str) -> tuple[str, str]:
    """(Content-Type, disposition) a drop is served with: images as themselves, text as plain
    text, anything else (HTML, scripts, archives) as a download the browser never runs."""
    if kind == "image":
        return media_type, "inline"
    if kind in ("text", "markdown"):
        return "text/plain; charset=utf-8", "inline"
    return "application/octet-stream", "attachment"
