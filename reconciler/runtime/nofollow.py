"""Opening the control plane's directories and files without following a symlink; used by
workspace.py, logs.py and drop_store.py for everything mc writes under `.mc/`.

An agent that runs unconfined can plant `ln -s /some/dir .mc/work/<task>/2`. Every component
from `.mc` down is therefore opened relative to its parent's descriptor with O_NOFOLLOW (and
created with mkdir at that descriptor), so a planted link is refused, never written through.
The directories above `.mc` are the repository path the user chose and are followed.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Iterator, Sequence
from pathlib import Path

CONTROL_DIR = ".mc"
DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class PlantedLink(OSError):
    """A path mc was about to create or use is a symlink or not a directory: refused."""

    def __init__(self, path: Path, what: str) -> None:
        super().__init__(errno.ELOOP, f"{path} is {what}; refusing to follow or write through it")
        self.path = path

    def __str__(self) -> str:
        return str(self.strerror)


def split_at_control(path: Path) -> tuple[Path, tuple[str, ...]]:
    """(the directory that is followed, the names below it that are not).

    From the last `.mc` component down nothing is followed; a path outside any `.mc` (unit
    tests of a single file) follows all but its last component.
    """
    path = path.absolute()
    parts = path.parts
    if ".." in parts:
        raise PlantedLink(path, "a path with '..'")
    if CONTROL_DIR in parts[:-1]:
        at = len(parts) - 1 - parts[::-1].index(CONTROL_DIR)
        return Path(*parts[:at]), parts[at:]
    return path.parent, (path.name,)


def open_dir_at(dir_fd: int, name: str, where: Path, *, create: bool) -> int:
    """The descriptor of directory `name` in dir_fd, created (0755 less umask) when asked."""
    if create:
        with contextlib.suppress(FileExistsError):
            os.mkdir(name, 0o755, dir_fd=dir_fd)
    try:
        return os.open(name, DIR_FLAGS, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            raise PlantedLink(where, _kind_of(dir_fd, name)) from None
        raise


def open_dirs(top: Path, names: Sequence[str], *, create: bool) -> int:
    """Open top (followed), then each of names below it without following; returns the last
    descriptor (the caller closes it). Raises PlantedLink, FileNotFoundError or OSError."""
    fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    where = top
    try:
        for name in names:
            where = where / name
            child = open_dir_at(fd, name, where, create=create)
            os.close(fd)
            fd = child
    except BaseException:
        os.close(fd)
        raise
    return fd


@contextlib.contextmanager
def opened_dir(path: Path, *, create: bool) -> Iterator[int]:
    """A directory under the control plane, opened component by component without links."""
    top, names = split_at_control(path)
    fd = open_dirs(top, names, create=create)
    try:
        yield fd
    finally:
        os.close(fd)


def open_file_at(dir_fd: int, name: str, flags: int, where: Path, mode: int = 0o644) -> int:
    """open(2) of a file in dir_fd that refuses a symlink in its place."""
    try:
        return os.open(name, flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise PlantedLink(where, "a symlink") from None
        raise


def open_file(path: Path, flags: int, mode: int = 0o644) -> int:
    """A file under the control plane: its directories and itself opened without links."""
    with opened_dir(path.absolute().parent, create=False) as dir_fd:
        return open_file_at(dir_fd, path.name, flags, path, mode)


def _kind_of(dir_fd: int, name: str) -> str:
    try:
        mode = os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode
    except OSError:
        return "not a directory"
    return "a symlink" if stat.S_ISLNK(mode) else "not a directory"
