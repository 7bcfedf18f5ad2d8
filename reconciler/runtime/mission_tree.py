"""The applied mission tree a sandboxed agent reads: one commit exported with `git archive`
into `.mc/trees/<commit>/` once (a temp dir renamed into place, made read-only, then reused);
spawn calls `ensure_tree` before a sandboxed run, engine/launch.py names the path.

The export holds the commit's files only: never `.git`, and never a committed `.mc/`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import subprocess
import tarfile
import tempfile
from pathlib import Path

from .sandbox import MissionTree

TREES_DIR = "trees"  # under the mission's .mc/
_LEFT_OUT = frozenset({".git", ".mc"})
_GIT_TIMEOUT_S = 120.0


class TreeExportError(Exception):
    """git could not export the commit (the message is git's own, in one line)."""


def tree_path(mc_dir: Path, commit: str) -> Path:
    """Where the export of `commit` lives."""
    return mc_dir / TREES_DIR / commit


def head_commit(repo: Path) -> str | None:
    """The repo's HEAD commit (for a mission applied from the work tree); None without one."""
    proc = subprocess.run(
        ["git", "-C", str(repo), "rev-parse", "--verify", "--quiet", "HEAD^{commit}"],
        capture_output=True,
        text=True,
        check=False,
        timeout=_GIT_TIMEOUT_S,
    )
    if proc.returncode != 0:
        return None
    return proc.stdout.strip() or None


def ensure_tree(tree: MissionTree) -> None:
    """Export tree.commit to tree.path unless a complete export is already there.

    Raises OSError (disk) or TreeExportError (git). A half-made export never sits at the path:
    it is built in a temp dir beside it and renamed into place when complete.
    """
    if tree.path.is_dir():
        return
    tree.path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{tree.commit}.", dir=tree.path.parent))
    try:
        _export(tree.repo, tree.commit, tmp)
        _make_read_only(tmp)
        try:
            tmp.rename(tree.path)
        except OSError:
            if not tree.path.is_dir():  # not another process having won the race
                raise
    finally:
        if tmp.exists():
            _remove(tmp)


def _export(repo: Path, commit: str, dest: Path) -> None:
    argv = ["git", "-C", str(repo), "archive", "--format=tar", commit]
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        try:
            with tarfile.open(fileobj=proc.stdout, mode="r|") as archive:
                for member in archive:
                    if member.name.split("/", 1)[0] not in _LEFT_OUT:
                        archive.extract(member, dest, filter="tar")
        except tarfile.TarError as exc:
            proc.kill()
            problem = proc.stderr.read().decode(errors="replace").strip() or str(exc)
            raise TreeExportError(_one_line(f"git archive {commit}: {problem}")) from exc
        error = proc.stderr.read().decode(errors="replace")
        if proc.wait(timeout=_GIT_TIMEOUT_S) != 0:
            raise TreeExportError(_one_line(f"git archive {commit}: {error.strip()}"))


def _make_read_only(top: Path) -> None:
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
