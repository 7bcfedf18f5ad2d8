"""Which repo files an agent runs: `{repo}/…` paths in its command and its `code:` globs.

specs/models.py checks the paths on their own (inside the repo); specs/desired.py matches them
against the files of the commit (or work tree) being read and folds the files' git blob ids
into the agent's spec as `code_blobs`, so its digest, and an approval of it, covers its code.

Patterns are relative to the repo root, `/`-separated: `*`, `?` and `[…]` match within one
path segment, `**` any number of segments, and a pattern naming a directory takes every file
under it.
"""

from __future__ import annotations

import bisect
import fnmatch
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

# `{repo}` followed by a path, inside any argument (`--script={repo}/x.py`, `sh -c "… {repo}/y"`);
# the path ends where a shell or an option syntax would end it.
REPO_PATH = re.compile(r"\{repo\}/([^\s'\"`,;:=()|&<>$]*)")
GLOB_CHARS = re.compile(r"[*?\[]")
MAX_CODE_FILES = 1000  # files one agent's code may name; each is a line of its digested spec
MAX_PATTERNS = 64
MAX_PATTERN_CHARS = 1024
SYNTHETIC = "code_blobs"  # the spec key mc fills with {path: blob id}; never written by hand

Loc = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class CodeRef:
    """One pattern naming agent code, and where the agent's document says it."""

    loc: Loc  # ("spec", "command", i) or ("spec", "code", i)
    pattern: str  # normalised: no empty or '.' segments
    shown: str  # as the user wrote it, for messages


def outside_repo(pattern: str) -> str | None:
    """Why `pattern` does not name something inside the repo, or None when it does."""
    if "\0" in pattern:
        return "holds a NUL character"
    if pattern.startswith("/"):
        return "is absolute; paths are relative to the repo root"
    if ".." in pattern.split("/"):
        return "leaves the repo ('..')"
    if not normalise(pattern):
        return "names the whole repo; name the files the agent runs"
    return None


def normalise(pattern: str) -> str:
    """`pattern` without empty and '.' segments (`./agents//x.py` -> `agents/x.py`)."""
    return "/".join(p for p in pattern.split("/") if p not in ("", "."))


def check_command(command: Sequence[str]) -> None:
    """ValueError when a `{repo}/…` path in the command leaves the repo."""
    for i, arg in enumerate(command):
        for found in REPO_PATH.finditer(arg):
            if ".." in found.group(1).split("/"):  # `{repo}//x` is still inside; `..` is not
                raise ValueError(f"command[{i}]: {found.group(0)} leaves the repo ('..')")


def check_globs(globs: Sequence[str]) -> None:
    """ValueError when a `code:` entry is not a pattern inside the repo (or there are too many)."""
    if len(globs) > MAX_PATTERNS:
        raise ValueError(f"{len(globs)} code patterns; at most {MAX_PATTERNS}")
    for i, glob in enumerate(globs):
        if len(glob) > MAX_PATTERN_CHARS:
            raise ValueError(f"code[{i}] is longer than {MAX_PATTERN_CHARS} characters")
        why = outside_repo(glob)
        if why is not None:
            raise ValueError(f"code[{i}] {glob!r} {why}")


def references(spec: Mapping[str, Any]) -> list[CodeRef]:
    """Every pattern an agent's (validated) spec names as its code, in document order.

    `{repo}` alone or `{repo}/` names no file (the agent's code must then be listed in `code:`).
    """
    refs: list[CodeRef] = []
    for i, arg in enumerate(spec.get("command") or ()):
        for found in REPO_PATH.finditer(arg):
            if normalise(found.group(1)):
                refs.append(
                    CodeRef(("spec", "command", i), normalise(found.group(1)), found.group(0))
                )
    for i, glob in enumerate(spec.get("code") or ()):
        refs.append(CodeRef(("spec", "code", i), normalise(glob), glob))
    return refs


def resolve(
    refs: Sequence[CodeRef],
    tree: Mapping[str, str],
    paths: Sequence[str] | None = None,
    links: Mapping[str, str] | None = None,
) -> tuple[dict[str, str], list[tuple[Loc, str, str | None]]]:
    """The files `refs` name in `tree` ({path: blob id}; `paths`: its keys sorted, when the
    caller resolves many agents) and the problems: a pattern that matches nothing (the agent
    would fail to start) or too many files. The files come back sorted by path.

    `links` maps each symbolic link of `tree` that points inside the repo to the path it
    points to (normalised): a named link takes the file (or every file under the folder) it
    points to, so editing what the link leads to is a change of the agent's code too."""
    paths = sorted(tree) if paths is None else paths
    files: set[str] = set()
    problems: list[tuple[Loc, str, str | None]] = []
    for ref in refs:
        found = matching(ref.pattern, paths)
        if not found:
            hint = "commit the file, or correct the path: it is relative to the repo root"
            problems.append((ref.loc, f"{ref.shown} names no file in the mission repo", hint))
        files.update(found)
    followed = [p for p in files if links and p in links]
    while followed and links and len(files) <= MAX_CODE_FILES:
        target = links[followed.pop()]
        for found_path in matching(target, paths):
            if found_path not in files:
                files.add(found_path)
                if found_path in links:
                    followed.append(found_path)
    if len(files) > MAX_CODE_FILES and refs:
        where = refs[-1].loc[:2]
        msg = f"the agent's code names {len(files)} files; at most {MAX_CODE_FILES}"
        problems.append((where, msg, "name the files the agent runs, not whole trees"))
    return {p: tree[p] for p in sorted(files)}, problems


def literal_prefix(pattern: str) -> str:
    """The leading segments of `pattern` without glob characters ('' when it starts with one):
    every path it names lies at or under this one."""
    literal = []
    for part in pattern.split("/"):
        if GLOB_CHARS.search(part):
            break
        literal.append(part)
    return "/".join(literal)


def matching(pattern: str, paths: Sequence[str]) -> list[str]:
    """The paths of sorted `paths` that `pattern` names (itself, or under a named directory)."""
    prefix = literal_prefix(pattern)
    rest = pattern.split("/")[len(prefix.split("/")) if prefix else 0 :]
    if not rest:  # a plain path: the file itself, or every file under that directory
        return [p for p in _under(prefix, paths) if p == prefix or p.startswith(prefix + "/")]
    start = prefix + "/" if prefix else ""
    return [p for p in _under(prefix, paths) if _match(rest, p[len(start) :].split("/"))]


def _under(prefix: str, paths: Sequence[str]) -> Sequence[str]:
    """The slice of sorted `paths` that start with `prefix` (all of them for '')."""
    if not prefix:
        return paths
    lo = bisect.bisect_left(paths, prefix)
    hi = bisect.bisect_left(paths, prefix + "0")  # '0' follows '/': past `prefix/…`
    return [p for p in paths[lo:hi] if p == prefix or p.startswith(prefix + "/")]


def _match(pattern: Sequence[str], parts: Sequence[str]) -> bool:
    """Segment-wise glob match; a pattern used up before the path named a directory."""
    if not pattern:
        return True
    head = pattern[0]
    if head == "**":
        rest = pattern[1:]
        while rest and rest[0] == "**":
            rest = rest[1:]
        return any(_match(rest, parts[i:]) for i in range(len(parts) + 1))
    return bool(parts) and fnmatch.fnmatchcase(parts[0], head) and _match(pattern[1:], parts[1:])
