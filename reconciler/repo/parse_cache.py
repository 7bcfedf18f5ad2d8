"""Parsed documents by git blob id in `.mc/cache`, as schema-checked JSON; used by the git source.

The cache is control-plane data that anything with write access to `.mc/` could replace, so it
holds no executable data (it was a pickle, which runs code when loaded): it is JSON read back
through a strict schema, and a file that does not parse, or any entry whose digest does not
match its content, throws the whole cache away (it is rebuilt from git on the next plan).
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from specs.loader import ParsedDoc, digest_of

FORMAT = "mc-parse-cache"
VERSION = 6  # bump when parsing or the models change what a blob parses to
MAX_BYTES = 512 * 1024 * 1024  # a cache bigger than this is not ours to read

# kind, name, labels, spec, digest, index in the file
Entry = tuple[str, str, dict[str, str], dict[str, Any], str, int]


class _CacheFile(BaseModel):
    """The file's schema: anything else in it is a reason to discard it."""

    model_config = ConfigDict(extra="forbid", strict=True)

    format: Literal["mc-parse-cache"]
    version: Literal[6]
    entries: dict[str, list[Entry]]


class ParseCache:
    """Parsed documents of blobs: an unchanged file is never parsed twice.

    `path` is the cache file (JSON: `{"format", "version", "entries": {blob sha: [Entry]}}`).
    Reading never raises: a missing, unreadable, foreign or tampered file is an empty cache.
    """

    def __init__(self, path: Path) -> None:
        self.path = path  # see in_dir()
        self.entries: dict[str, list[Entry]] = _load(path)
        self.dirty = False

    @classmethod
    def in_dir(cls, cache_dir: Path) -> ParseCache:
        """The cache of this format version in `cache_dir` (older versions' files are ignored)."""
        return cls(cache_dir / f"specs-v{VERSION}.json")

    def __contains__(self, sha: str) -> bool:
        return sha in self.entries

    def get(self, sha: str, path: str) -> list[ParsedDoc] | None:
        """The documents blob `sha` parsed to, placed at `path`; None when not cached."""
        found = self.entries.get(sha)
        if found is None:
            return None
        return [ParsedDoc(k, n, lab, s, d, path, i) for k, n, lab, s, d, i in found]

    def put(self, sha: str, docs: Iterable[ParsedDoc]) -> None:
        self.entries[sha] = [(d.kind, d.name, d.labels, d.spec, d.digest, d.index) for d in docs]
        self.dirty = True

    def save(self) -> None:
        """Write atomically through a fresh private temp file (never through a planted link)."""
        if not self.dirty:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        body = {"format": FORMAT, "version": VERSION, "entries": self.entries}
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".parse-cache.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(body, fh, separators=(",", ":"), ensure_ascii=False)
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        self.dirty = False


def _load(path: Path) -> dict[str, list[Entry]]:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return {}
    try:
        with os.fdopen(fd, "rb") as fh:
            data = fh.read(MAX_BYTES + 1)
        if len(data) > MAX_BYTES:
            return {}
        entries = _CacheFile.model_validate_json(data).entries
    except (OSError, ValueError, ValidationError, RecursionError):
        return {}
    for docs in entries.values():
        for kind, name, labels, spec, digest, _ in docs:
            if digest_of(kind, name, labels, spec) != digest:
                return {}  # edited by hand or by something else: trust none of it
    return entries
