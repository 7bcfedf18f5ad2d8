"""The applied mission tree a sandboxed agent reads: one commit's files, as git stores them
(repo/tree_files.py), exported into `.mc/trees/<commit>/` once (a temp dir renamed into place,
made read-only, then reused); spawn calls `open_tree` before a sandboxed run and binds the
descriptor it returns, engine/launch.py names the path.

The export holds the commit's files only: never `.git`, and never a committed `.mc/`.

An agent running unconfined (`sandbox: none`) can write under `.mc/`: plant a symlink at a
later commit's tree path (to the repo, so a sandboxed agent would see `.git`), or replace an
export. So nothing from `.mc` down is followed (nofollow.py), the export is written through
the descriptor of `.mc/trees` (its /proc/self/fd path), and an existing tree is reused only if
it is a real directory owned by mc's uid with no write bit (as the export leaves it); anything
else at the path is refused (UnsafeTree: the run fails with the reason), never replaced.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from reconciler.repo.git import GitError, git_argv, git_env
from reconciler.repo.tree_files import (
    EXECUTABLE,
    GITLINK,
    SYMLINK,
    TreeEntry,
    stream_blobs,
    tree_entries,
)

from .nofollow import PlantedLink, exists_at, open_dir_at, open_dirs, split_at_control
from .sandbox import MissionTree

TREES_DIR = "trees"  # under the mission's .mc/
_LEFT_OUT = frozenset({".git", ".mc"})
_GIT_TIMEOUT_S = 120.0


class TreeExportError(Exception):
    """git could not export the commit (the message is git's own, in one line)."""


class UnsafeTree(Exception):
    """Something other than mc's read-only export is at the tree path (a symlink, a file, a
    writable directory or one another user owns): refused, not followed, not reused."""


def tree_path(mc_dir: Path, commit: str) -> Path:
    """Where the export of `commit` lives."""
    return mc_dir / TREES_DIR / commit


def head_commit(repo: Path) -> str | None:
    """The repo's HEAD commit (for a mission applied from the work tree); None without one."""
    proc = subprocess.run(
        git_argv(repo, "rev-parse", "--verify", "--quiet", "HEAD^{commit}"),
        env=git_env(),
        capture_output=True,
        text=True,
        check=False,
        timeout=_GIT_TIMEOUT_S,
    )
    if proc.returncode != 0:
        return None
    return proc.stdout.strip() or None


def ensure_tree(tree: MissionTree) -> None:
    """Export tree.commit to tree.path unless a complete export is already there (open_tree,
    the descriptor closed again)."""
    os.close(open_tree(tree))


def open_tree(tree: MissionTree) -> int:
    """The descriptor (O_DIRECTORY) of the export of tree.commit, made first if missing; what
    a sandbox binds. Nothing from `.mc` down is followed.

    Raises UnsafeTree (a link or anything but mc's read-only export in the way), OSError (disk)
    or TreeExportError (git). A half-made export never sits at the path: it is built in a temp
    dir beside it and renamed into place when complete.
    """
    top, names = split_at_control(tree.path.parent)
    try:
        trees_fd = open_dirs(top, names, create=True)
    except PlantedLink as exc:
        raise UnsafeTree(str(exc)) from None
    try:
        fd = _open_export(trees_fd, tree)
        if fd is None:
            _export_into(trees_fd, tree)
            fd = _open_export(trees_fd, tree)
        if fd is None:  # removed again between the rename and the open
            raise FileNotFoundError(errno.ENOENT, "the export vanished once made", str(tree.path))
        return fd
    finally:
        os.close(trees_fd)


def _open_export(trees_fd: int, tree: MissionTree) -> int | None:
    """The export's descriptor if there is one, checked on the descriptor; None if absent."""
    try:
        fd = open_dir_at(trees_fd, tree.commit, tree.path, create=False)
    except FileNotFoundError:
        return None
    except PlantedLink as exc:
        raise UnsafeTree(f"{exc} (not mc's export; remove it to export again)") from None
    info = os.fstat(fd)
    problem = None
    if info.st_uid != os.geteuid():
        problem = f"owned by uid {info.st_uid}, not mc's ({os.geteuid()})"
    elif stat.S_IMODE(info.st_mode) & 0o222:
        problem = f"writable (mode {stat.S_IMODE(info.st_mode):o}; an export is read-only)"
    if problem is not None:
        os.close(fd)
        raise UnsafeTree(f"{tree.path} is {problem}: not reused (remove it to export again)")
    return fd


def _export_into(trees_fd: int, tree: MissionTree) -> None:
    """Export into a temp dir in `.mc/trees` (reached through its descriptor, so a link
    planted on the way meanwhile changes nothing), then rename it to the commit's name."""
    tmp = Path(tempfile.mkdtemp(prefix=f".{tree.commit}.", dir=f"/proc/self/fd/{trees_fd}"))
    try:
        _export(tree.repo, tree.commit, tmp)
        make_read_only(tmp)
        try:
            os.rename(tmp.name, tree.commit, src_dir_fd=trees_fd, dst_dir_fd=trees_fd)
        except OSError:  # something is there: another process's export (checked next, as any
            if not exists_at(trees_fd, tree.commit):  # export is) or a plant (refused then)
                raise
    finally:
        if os.path.lexists(tmp):
            _remove(tmp)


def _export(repo: Path, commit: str, dest: Path) -> None:
    """Write the commit's files into `dest` as git stores them (repo/tree_files.py: not `git
    archive`, whose attributes could rewrite a file an agent runs)."""
    writer = _Writer(dest)
    try:
        entries = [e for e in tree_entries(repo, commit) if e.path.split("/")[0] not in _LEFT_OUT]
        for entry in entries:
            if entry.mode == GITLINK:  # a submodule: an empty folder, as `git archive` makes
                writer.folder(entry.path.split("/"))
        files = [e for e in entries if e.mode != GITLINK]
        stream_blobs(repo, files, writer.write)
    except GitError as exc:
        raise TreeExportError(_one_line(f"exporting {commit} with git: {exc}")) from None


class _Writer:
    """Writes entries under `dest`, refusing a path that could leave it (a crafted tree)."""

    def __init__(self, dest: Path) -> None:
        self.dest = dest
        self.top = os.path.realpath(dest)
        self.made: set[tuple[str, ...]] = {()}

    def folder(self, parts: list[str]) -> Path:
        """dest/parts (made if missing), checked once: no link on the way leads out of dest."""
        if any(p in ("", ".", "..") or "\0" in p for p in parts):
            raise GitError(f"unsafe path in the tree: {'/'.join(parts)!r}")
        path = self.dest.joinpath(*parts)
        if tuple(parts) not in self.made:
            path.mkdir(parents=True, exist_ok=True)
            real = os.path.realpath(path)
            if real != self.top and not real.startswith(self.top + os.sep):
                raise GitError(f"{'/'.join(parts)!r} would be written through a link out of it")
            self.made.add(tuple(parts))
        return path

    def write(self, entry: TreeEntry, chunks: Iterator[bytes]) -> None:
        *parents, name = entry.path.split("/")
        if name in ("", ".", "..") or "\0" in name:
            raise GitError(f"unsafe path in the tree: {entry.path!r}")
        target = self.folder(parents) / name
        if entry.mode == SYMLINK:
            os.symlink(os.fsdecode(b"".join(chunks)), target)
            return
        mode = 0o755 if entry.mode == EXECUTABLE else 0o644
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        with os.fdopen(os.open(target, flags, mode), "wb") as out:
            for chunk in chunks:
                out.write(chunk)
            os.fchmod(out.fileno(), mode)  # the umask must not change what git says


def make_read_only(top: Path) -> None:
    """Drop every write bit (links are left alone: their mode means nothing)."""
    for dirpath, dirnames, filenames in os.walk(top, topdown=False):
        for name in [*filenames, *dirnames]:
            path = Path(dirpath, name)
            info = path.lstat()
            if not stat.S_ISLNK(info.st_mode):
                path.chmod(stat.S_IMODE(info.st_mode) & ~0o222)
    top.chmod(0o555)


def _remove(top: Path) -> None:
    """Remove a (read-only) export; write bits come back first, so non-root can delete too."""
    for dirpath, _dirnames, _filenames in os.walk(top):
        with contextlib.suppress(OSError):
            Path(dirpath).chmod(0o755)
    shutil.rmtree(top, ignore_errors=True)


def _one_line(text: str) -> str:
    return " ".join(text.split())[:300]
