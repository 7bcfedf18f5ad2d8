"""Safe reads of the files the dashboard shows: log tails, task.json, heartbeats, content drops.

Every path comes from the state (a run's workspace, a drop's sha256), so every path is checked
to lie inside `.mc/work` or `.mc/drops` before it is opened; nothing else is ever read. An agent
owns its workspace and may have replaced any file there by a symlink (to another attempt's log,
to /proc/self/environ), a FIFO or a device: files are opened from `.mc` down without following
a link and without blocking, only a regular file is read, and never more than a bound
(reconciler/runtime/nofollow.py).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from reconciler.engine.launch import Paths
from reconciler.runtime.nofollow import read_part, split_at_control, stat_regular

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
    """`path` (absolute), if it names something under `root` (both under a `.mc`): the part
    above `.mc` may be spelled differently (resolved), nothing from `.mc` down is followed
    and no `..` is allowed. Whether it is a regular file is checked when it is opened."""
    try:
        top, names = split_at_control(path)
        root_top, root_names = split_at_control(root)
        if names[: len(root_names)] != root_names or len(names) <= len(root_names):
            return None
        if top != root_top and top.resolve() != root_top.resolve():
            return None
    except (OSError, RuntimeError):
        return None
    return path.absolute()


def _read_tail(path: Path, limit: int) -> tuple[str, bool] | str:
    """The last `limit` bytes and whether the file is longer, or why it was not read."""
    read = read_part(path, limit, tail=True)
    if read.kind != "ok":
        return read.problem(path.name, limit) or path.name
    return read.data.decode("utf-8", "replace"), read.size > limit


def _read_head(path: Path, limit: int) -> tuple[str, bool] | None:
    """The first `limit` bytes and whether the file is longer; None unless a regular file."""
    read = read_part(path, limit + 1)
    if read.kind != "ok":
        return None
    return read.data[:limit].decode("utf-8", "replace"), len(read.data) > limit


@dataclass(frozen=True, slots=True)
class LogTail:
    text: str
    truncated: bool  # only the end of a longer log is shown
    refused: str | None = None  # why nothing is shown (the log is no longer a regular file)


def workspace_file(paths: Paths, workspace: str | None, name: str) -> Path | None:
    """A file of a run's workspace, if the workspace lies under .mc/work (not yet opened)."""
    if not workspace:
        return None
    return _inside(Path(workspace) / name, paths.work)


def log_tail(paths: Paths, workspace: str | None, name: str) -> LogTail | None:
    """The end of a log; None when there is none, `refused` set when it is not a file."""
    path = workspace_file(paths, workspace, name)
    if path is None:
        return None
    read = _read_tail(path, LOG_TAIL_BYTES)
    if isinstance(read, str):
        return None if read.endswith(" is missing") else LogTail("", False, read)
    return LogTail(*read)


def rendered_prompt(paths: Paths, workspace: str | None) -> str | None:
    """The prompt the agent was actually given (task.json of that run)."""
    path = workspace_file(paths, workspace, "task.json")
    read = _read_head(path, TASK_JSON_BYTES) if path is not None else None
    if read is None or read[1]:
        return None
    try:
        data = json.loads(read[0])
    except ValueError:
        return None
    prompt = data.get("prompt") if isinstance(data, dict) else None
    return prompt if isinstance(prompt, str) else None


def heartbeat_at(paths: Paths, workspace: str | None) -> datetime | None:
    """When the agent last touched its heartbeat file (naive UTC, as the state stores time);
    the file's own mtime, never that of a link's target."""
    path = workspace_file(paths, workspace, "heartbeat")
    info = stat_regular(path) if path is not None else None
    if info is None:
        return None
    return datetime.fromtimestamp(info.st_mtime, UTC).replace(tzinfo=None)


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
    """The stored file of a drop, only for a well-formed sha256 inside .mc/drops, and only
    while it is a regular file (not a link)."""
    if not SHA256_HEX.fullmatch(sha256):
        return None
    path = _inside(paths.drop_file(sha256), paths.drops)
    return path if path is not None and stat_regular(path) is not None else None


def drop_text(paths: Paths, sha256: str) -> tuple[str, bool] | None:
    """The start of a text drop for showing inline, and whether it was cut."""
    path = drop_file(paths, sha256)
    return _read_head(path, INLINE_TEXT_BYTES) if path is not None else None


def served_type(kind: DropKind, media_type: str) -> tuple[str, str]:
    """(Content-Type, disposition) a drop is served with: images as themselves, text as plain
    text, anything else (HTML, scripts, archives) as a download the browser never runs."""
    if kind == "image":
        return media_type, "inline"
    if kind in ("text", "markdown"):
        return "text/plain; charset=utf-8", "inline"
    return "application/octet-stream", "attachment"
