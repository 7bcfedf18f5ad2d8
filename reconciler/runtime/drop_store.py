"""Content drops: a run's out/ copied, bounded, into the content-addressed store
`.mc/drops/xx/<sha256>`; collect.py and leftovers.py call `store_drops` when a run has ended.

Three passes, so a hostile out/ costs little: list (directory entries only, stopping at the
file-count cap: 100,000 tiny files are never stat-ed), measure (each file's apparent size,
st_size, so a sparse file counts in full, against the per-file and per-run caps before a byte is
copied), copy. A name that is not valid UTF-8 or holds a control character (boundary.py) refuses
the run's drops, naming the entry. Each file is opened without following a link (a symlink under
out/ is not a drop and is skipped), copied into a private temp file of the store
(O_CREAT|O_EXCL, 0600, a random name: mkstemp at a directory descriptor) with the run's secret
values redacted (redact.py), hashed from the bytes written to that copy — never re-read from
out/ — and renamed to its hash only once every file of the run is copied: a process rewriting a
file while mc copies it cannot make the stored bytes differ from the recorded sha256, and a file
that grows past its cap while copied stops the copy. Every temp file is removed on every
failure, ENOSPC included.
"""

from __future__ import annotations

import errno
import hashlib
import mimetypes
import os
import secrets
import stat
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from .boundary import check_name, show_name
from .nofollow import PlantedLink, open_dir_at, open_file_at, opened_dir
from .redact import Redactor
from .types import Drop, DropCaps

_CHUNK = 1 << 20
# The machine, not the agent: worth another attempt.
_TEMPORARY_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EMFILE, errno.ENFILE}

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
class DropsRefused:
    """The run's drops were not stored: over a cap or unsafe (failed), or the disk (retry)."""

    status: Literal["failed", "retry"]
    reason: str


class _Refuse(Exception):
    def __init__(self, status: Literal["failed", "retry"], reason: str) -> None:
        super().__init__(reason)
        self.refused = DropsRefused(status, reason)


def store_dir(workspace: Path) -> Path:
    """`.mc/drops` of a workspace `.mc/work/<task>/<attempt>`."""
    return workspace.absolute().parents[2] / "drops"


def store_drops(
    workspace: Path, caps: DropCaps, secrets: Sequence[bytes] = ()
) -> tuple[Drop, ...] | DropsRefused:
    """Store every regular file under the workspace's out/, each `secrets` value in its bytes
    replaced by [redacted] as it is copied (redact.py); never raises for what is found."""
    store = store_dir(workspace)
    try:
        with ExitStack() as stack:
            ws_fd = stack.enter_context(opened_dir(workspace, create=False))
            out_fd = _open_out(ws_fd, workspace)
            if out_fd is None:
                return ()
            stack.callback(os.close, out_fd)
            listing = _list_files(out_fd, caps)
            _measure(out_fd, listing, caps)
            store_fd = stack.enter_context(opened_dir(store, create=True))
            return _copy_all(out_fd, store_fd, store, listing, caps, secrets)
    except _Refuse as refuse:
        return refuse.refused
    except PlantedLink as exc:
        return DropsRefused("failed", f"drops not collected: {exc}")
    except FileNotFoundError:
        return ()  # the workspace was never made
    except OSError as exc:
        status: Literal["failed", "retry"] = "retry" if exc.errno in _TEMPORARY_ERRNOS else "failed"
        return DropsRefused(status, f"drops not collected: {exc.strerror or exc}")


def _open_out(ws_fd: int, workspace: Path) -> int | None:
    """out/ itself, or None when it is missing or is not a directory (a link: no drops)."""
    try:
        return open_dir_at(ws_fd, "out", workspace / "out", create=False)
    except (FileNotFoundError, PlantedLink):
        return None


# -- pass 1: list --------------------------------------------------------------------------


@dataclass(slots=True)
class _Listing:
    """Regular files under out/ by directory (a tuple of names below out/), in walk order."""

    dirs: dict[tuple[str, ...], list[str]] = field(default_factory=dict)
    files: int = 0


def _list_files(out_fd: int, caps: DropCaps) -> _Listing:
    listing = _Listing()
    pending: list[tuple[str, ...]] = [()]
    while pending:
        rel = pending.pop()
        names, subdirs = _entries(out_fd, rel, caps, listing)
        listing.dirs[rel] = names
        pending.extend((*rel, d) for d in reversed(subdirs))
        if len(listing.dirs) + len(pending) > caps.max_files + 1:
            raise _Refuse("failed", f"out/ has more than {caps.max_files} directories")
    return listing


def _entries(
    out_fd: int, rel: tuple[str, ...], caps: DropCaps, listing: _Listing
) -> tuple[list[str], list[str]]:
    """(regular files, directories) of one directory; the kernel's d_type, no stat."""
    files: list[str] = []
    dirs: list[str] = []
    with _subdir(out_fd, rel) as fd, os.scandir(fd) as it:
        for entry in it:
            if entry.is_dir(follow_symlinks=False):
                _check_name((*rel, entry.name))
                dirs.append(entry.name)
            elif entry.is_file(follow_symlinks=False):
                _check_name((*rel, entry.name))
                listing.files += 1
                if listing.files > caps.max_files:
                    raise _Refuse("failed", _too_many((*rel, entry.name), caps))
                files.append(entry.name)
    return sorted(files), sorted(dirs)


def _check_name(rel: tuple[str, ...]) -> None:
    why = check_name(rel[-1])
    if why is not None:
        raise _Refuse("failed", f"drop {_show(rel)}: the name {why}; drops not collected")


def _too_many(rel: tuple[str, ...], caps: DropCaps) -> str:
    return (
        f"drop {_show(rel)} is one file too many: a run may leave at most {caps.max_files}"
        " files under out/ (drops.max_files)"
    )


@contextmanager
def _subdir(out_fd: int, rel: tuple[str, ...]) -> Iterator[int]:
    """A directory below out/, each component opened without following a link."""
    fd = os.dup(out_fd)
    try:
        for i, name in enumerate(rel):
            child = open_dir_at(fd, name, Path("out", *rel[: i + 1]), create=False)
            os.close(fd)
            fd = child
        yield fd
    finally:
        os.close(fd)


# -- pass 2: measure -----------------------------------------------------------------------


def _measure(out_fd: int, listing: _Listing, caps: DropCaps) -> None:
    """Refuse before copying when any file, or all of them, are over the caps (st_size)."""
    total = 0
    for rel, names in listing.dirs.items():
        if not names:
            continue
        with _subdir(out_fd, rel) as fd:
            for name in names:
                info = os.stat(name, dir_fd=fd, follow_symlinks=False)
                if not stat.S_ISREG(info.st_mode):
                    continue
                total += info.st_size
                _check((*rel, name), info.st_size, total, caps)


def _check(rel: tuple[str, ...], size: int, total: int, caps: DropCaps) -> None:
    if size > caps.max_file_bytes:
        raise _Refuse(
            "failed",
            f"drop {_show(rel)} is {_bytes(size)}, over the per-file cap of"
            f" {_bytes(caps.max_file_bytes)} (drops.max_file)",
        )
    if total > caps.max_run_bytes:
        raise _Refuse(
            "failed",
            f"drops reach {_bytes(total)} at {_show(rel)}, over the per-run cap of"
            f" {_bytes(caps.max_run_bytes)} (drops.max_run)",
        )


# -- pass 3: copy, hash, rename ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Copied:
    rel: tuple[str, ...]
    temp: str  # name in the store directory
    sha256: str
    size: int  # bytes stored (after redaction)
    read: int  # bytes read from out/ (what the caps count)


def _copy_all(
    out_fd: int,
    store_fd: int,
    store: Path,
    listing: _Listing,
    caps: DropCaps,
    secrets: Sequence[bytes],
) -> tuple[Drop, ...]:
    temps: list[str] = []  # every temp file made and not yet renamed: removed on any failure
    try:
        copied: list[_Copied] = []
        total = 0
        for rel, names in listing.dirs.items():
            if not names:
                continue
            with _subdir(out_fd, rel) as fd:
                for name in names:
                    one = _copy_one(fd, store_fd, (*rel, name), caps, (total, secrets), temps)
                    if one is not None:
                        copied.append(one)
                        total += one.read
        drops = []
        for c in copied:
            drops.append(_publish(store_fd, store, c))
            temps.remove(c.temp)
        return tuple(drops)
    finally:
        for temp in temps:
            _unlink_quietly(store_fd, temp)


def _copy_one(
    dir_fd: int,
    store_fd: int,
    rel: tuple[str, ...],
    caps: DropCaps,
    so_far: tuple[int, Sequence[bytes]],
    temps: list[str],
) -> _Copied | None:
    """Copy one file into a fresh temp file (named in `temps` at once); None when it is no
    longer a regular file. `so_far`: (bytes of the run read until now, secrets to redact)."""
    total, secrets = so_far
    try:
        src = open_file_at(dir_fd, rel[-1], os.O_RDONLY | os.O_NONBLOCK, Path("out", *rel))
    except (PlantedLink, FileNotFoundError):
        return None  # swapped for a link, or gone, since the listing: not a drop
    try:
        info = os.fstat(src)
        if not stat.S_ISREG(info.st_mode):
            return None
        _check(rel, info.st_size, total + info.st_size, caps)
        temp, tmp_fd = _temp_file(store_fd)
        temps.append(temp)
        try:
            digest, size, read = _copy_bounded(src, tmp_fd, rel, caps, total, secrets)
            os.fchmod(tmp_fd, 0o644)  # handed to later agents read-only
        finally:
            os.close(tmp_fd)
        return _Copied(rel, temp, digest, size, read)
    finally:
        os.close(src)


def _temp_file(store_fd: int) -> tuple[str, int]:
    """mkstemp at a directory descriptor: a new 0600 file under a random name."""
    while True:
        name = f".tmp-{secrets.token_hex(12)}"
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            return name, os.open(name, flags, 0o600, dir_fd=store_fd)
        except FileExistsError:
            continue


def _copy_bounded(
    src: int,
    dst: int,
    rel: tuple[str, ...],
    caps: DropCaps,
    total: int,
    secrets: Sequence[bytes] = (),
) -> tuple[str, int, int]:
    """Copy until EOF, secrets redacted, hashing exactly the bytes written; stop once a cap
    is passed. (sha256, bytes written, bytes read)."""
    digest = hashlib.sha256()
    redactor = Redactor(secrets)
    read = written = 0
    while chunk := os.read(src, _CHUNK):
        read += len(chunk)
        _check(rel, read, total + read, caps)  # it grew while being copied
        written += _write_all(dst, redactor.feed(chunk), digest)
    written += _write_all(dst, redactor.flush(), digest)
    return digest.hexdigest(), written, read


def _write_all(dst: int, data: bytes, digest: Any) -> int:
    view = memoryview(data)
    while view:
        view = view[os.write(dst, view) :]
    digest.update(data)
    return len(data)


def _publish(store_fd: int, store: Path, c: _Copied) -> Drop:
    """Rename the copy to its hash (atomic; replaces anything planted there). An intact copy
    already stored under that hash is kept as it is: a sandbox may have it bound by
    descriptor right now, and bwrap refuses a bind whose path has changed underneath it."""
    prefix = c.sha256[:2]
    sub_fd = open_dir_at(store_fd, prefix, store / prefix, create=True)
    try:
        if _holds(sub_fd, c.sha256):
            _unlink_quietly(store_fd, c.temp)
        else:
            os.rename(c.temp, c.sha256, src_dir_fd=store_fd, dst_dir_fd=sub_fd)
    finally:
        os.close(sub_fd)
    rel = "/".join(c.rel)
    media_type = _MIME.guess_type(rel)[0] or "application/octet-stream"
    return Drop(rel, c.sha256, c.size, media_type, store / prefix / c.sha256)


def _holds(dir_fd: int, sha256: str) -> bool:
    """Whether `sha256` in dir_fd is a regular file (not a link) whose bytes hash to its name."""
    try:
        fd = os.open(
            sha256, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dir_fd
        )
    except OSError:
        return False
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return False
        digest = hashlib.sha256()
        while chunk := os.read(fd, _CHUNK):
            digest.update(chunk)
        return digest.hexdigest() == sha256
    finally:
        os.close(fd)


def _unlink_quietly(dir_fd: int, name: str) -> None:
    with suppress(OSError):
        os.unlink(name, dir_fd=dir_fd)


def _show(rel: tuple[str, ...]) -> str:
    return "out/" + show_name("/".join(rel))


def _bytes(n: int) -> str:
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:.1f} {unit} ({n:,} bytes)"
    return f"{n:,} bytes"
