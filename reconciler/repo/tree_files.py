"""A commit's files exactly as git stores them, for the tree export (runtime/mission_tree.py).

`git archive` runs every file through the repo's attributes: `export-subst` writes commit
metadata (a subject anyone can choose in an unsigned commit) into the file, `ident`, eol and
`working-tree-encoding` rewrite it, `export-ignore` drops it. The blob id in an agent's digest
must be what the agent runs, so the export reads the tree and its blobs instead: one `git
ls-tree` and one streamed `git cat-file --batch`, through repo/git.py.
"""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from reconciler.repo.git import GitError, git_argv, git_env

CHUNK = 1 << 20
GITLINK = "160000"  # a submodule: no content in this repo
SYMLINK = "120000"
EXECUTABLE = "100755"


@dataclass(frozen=True, slots=True)
class TreeEntry:
    """One entry of a commit's tree, recursively: `path` is `/`-separated from the root."""

    path: str
    mode: str  # 100644 | 100755 | 120000 (symlink) | 160000 (submodule)
    sha: str


def tree_entries(root: Path | str, commit: str) -> list[TreeEntry]:
    """Every file, symlink and submodule of `commit`; GitError if git cannot list it."""
    proc = subprocess.run(
        git_argv(root, "ls-tree", "-r", "-z", "--full-tree", commit),
        capture_output=True,
        env=git_env(),
        check=False,
    )
    if proc.returncode != 0:
        raise GitError(proc.stderr.decode("utf-8", "replace").strip() or "git ls-tree failed")
    entries = []
    for record in proc.stdout.split(b"\0"):
        if record:
            meta, path = record.split(b"\t", 1)
            mode, _kind, sha = meta.decode().split()
            entries.append(TreeEntry(path.decode("utf-8", "surrogateescape"), mode, sha))
    return entries


def stream_blobs(
    root: Path | str,
    entries: Sequence[TreeEntry],
    take: Callable[[TreeEntry, Iterator[bytes]], None],
) -> None:
    """Call `take(entry, chunks)` for each entry in order with its blob's bytes in chunks of at
    most CHUNK (what `take` leaves unread is skipped), from one `git cat-file --batch`.
    Raises GitError when a blob is missing or git fails."""
    argv = git_argv(root, "cat-file", "--batch", "--buffer")  # no flush per object
    with subprocess.Popen(
        argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=git_env()
    ) as proc:
        assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
        feeder = threading.Thread(target=_feed, args=(proc.stdin, entries), daemon=True)
        feeder.start()  # a thread: git's output must be read while the ids are still written
        try:
            for entry in entries:
                header = proc.stdout.readline().split()
                if len(header) != 3 or header[1] != b"blob":
                    raise GitError(f"{entry.path}: blob {entry.sha} cannot be read")
                left = int(header[2])
                chunks = _chunks(proc.stdout, left)
                take(entry, chunks)
                for _ in chunks:  # drain what `take` did not read
                    pass
                proc.stdout.read(1)  # the newline after each object
        finally:
            feeder.join()
            proc.stdout.close()
            error = proc.stderr.read().decode("utf-8", "replace").strip()
        if proc.wait() != 0:
            raise GitError(error or "git cat-file failed")


def _feed(stdin: IO[bytes], entries: Sequence[TreeEntry]) -> None:
    try:
        for entry in entries:
            stdin.write(entry.sha.encode() + b"\n")
        stdin.close()
    except (BrokenPipeError, ValueError):
        pass  # git stopped early: the reader reports it


def _chunks(stream: IO[bytes], size: int) -> Iterator[bytes]:
    while size > 0:
        data = stream.read(min(size, CHUNK))
        if not data:
            raise GitError("git cat-file ended early")
        size -= len(data)
        yield data
