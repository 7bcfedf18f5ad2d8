"""Opening the control plane's directories and files without following a symlink; used by
workspace.py, logs.py and drop_store.py for everything mc writes under `.mc/`, and (the read
helpers at the end) by everything in mc that reads a file an agent could replace: result.json,
cost.json, heartbeat, stdout.log/stderr.log (adapters, supervise, `mc logs`, the dashboard).

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
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

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


def exists_at(dir_fd: int, name: str) -> bool:
    """Whether anything (a link too, not followed) is at `name` in the directory `dir_fd`."""
    try:
        os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return False
    return True


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


# --- reading what an agent could have replaced ------------------------------------------------
#
# An agent owns its workspace: any file there may have become a symlink (to /proc/self/environ,
# another attempt's log), a FIFO (open() would block mc forever) or a device (/dev/zero: a read
# without end). Every read therefore opens without following a link (from `.mc` down), with
# O_NONBLOCK, accepts only a regular file (checked on the opened descriptor) and reads at most a
# bound the caller gives.

NOT_REGULAR = "is not a regular file (symlinks are not followed)"


@dataclass(frozen=True, slots=True)
class CappedRead:
    """A file read under a bound; data is set only when kind is 'ok'. size: the file's size
    (for 'too_big', at least that), so a caller can tell a tail or head from the whole."""

    kind: Literal["ok", "missing", "too_big", "not_regular"]
    size: int = 0
    data: bytes = b""

    def problem(self, name: str, cap: int) -> str | None:
        """One line on why nothing was read (None for 'ok')."""
        match self.kind:
            case "ok":
                return None
            case "missing":
                return f"{name} is missing"
            case "too_big":
                return f"{name} is {self.size} bytes; limit {cap}"
            case "not_regular":
                return f"{name} {NOT_REGULAR}"


@contextlib.contextmanager
def opened_regular(path: Path) -> Iterator[tuple[int, os.stat_result] | CappedRead]:
    """(descriptor, fstat) of a regular file, opened without following a link and without
    blocking; a CappedRead saying 'missing' or 'not_regular' for anything else."""
    try:
        fd = open_file(path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        yield CappedRead("missing")
        return
    except OSError:  # a link in place or on the way, or nothing we can open: not read
        yield CappedRead("not_regular")
        return
    try:
        info = os.fstat(fd)
        yield (fd, info) if stat.S_ISREG(info.st_mode) else CappedRead("not_regular")
    finally:
        os.close(fd)


def _pread(fd: int, count: int, offset: int) -> bytes:
    chunks: list[bytes] = []
    while count > 0:
        chunk = os.pread(fd, count, offset)
        if not chunk:
            break
        chunks.append(chunk)
        count -= len(chunk)
        offset += len(chunk)
    return b"".join(chunks)


def read_whole(path: Path, cap_bytes: int) -> CappedRead:
    """The whole file if it is at most cap_bytes (checked before reading), else 'too_big'."""
    with opened_regular(path) as got:
        if isinstance(got, CappedRead):
            return got
        fd, info = got
        if info.st_size > cap_bytes:
            return CappedRead("too_big", info.st_size)
        data = _pread(fd, cap_bytes + 1, 0)  # it may have grown since fstat
        if len(data) > cap_bytes:
            return CappedRead("too_big", len(data))
        return CappedRead("ok", len(data), data)


def read_part(path: Path, limit: int, *, start: int = 0, tail: bool = False) -> CappedRead:
    """At most `limit` bytes of the file: from `start`, or its last `limit` bytes (tail).
    size is the file's size when opened, so `size > limit` says a head or tail was cut."""
    with opened_regular(path) as got:
        if isinstance(got, CappedRead):
            return got
        fd, info = got
        size = info.st_size
        offset = max(size - limit, 0) if tail else max(start, 0)
        return CappedRead("ok", size, _pread(fd, max(limit, 0), offset))


def stat_regular(path: Path) -> os.stat_result | None:
    """The file's own status (never a link's target), or None unless it is a regular file."""
    try:
        with opened_dir(path.absolute().parent, create=False) as dir_fd:
            info = os.stat(path.name, dir_fd=dir_fd, follow_symlinks=False)
    except OSError:
        return None
    return info if stat.S_ISREG(info.st_mode) else None


def _kind_of(dir_fd: int, name: str) -> str:
    try:
        mode = os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode
    except OSError:
        return "not a directory"
    return "a symlink" if stat.S_ISLNK(mode) else "not a directory"
