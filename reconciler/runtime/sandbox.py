"""The per-run sandbox: the bubblewrap command line that confines one agent; built at spawn.

Each run gets new mount, PID, IPC, UTS, cgroup and network namespaces (`--unshare-all`; the
network comes back only with `network: host`). Inside, the agent sees the system directories
read-only, a private /proc, /dev, /tmp and $HOME, its own workspace read-write, the applied
mission tree and the upstream drops it was handed read-only, and the host paths its agent
declares — nothing else: not /root, not mc's $HOME, not the host's /tmp, not the repo's `.git`
or `.mc/`. Every path keeps its host name inside, so task.json and the MC_* variables mean the
same thing in and out of the sandbox.

bwrap forks an init (PID 1 of the new PID namespace, leader of its own session) that starts
the agent and exits when the agent does; the kernel then kills whatever the agent left behind
(daemons, `setsid` grandchildren). `--die-with-parent` ties that init to the outer bwrap, so
killing the outer bwrap's group kills the whole namespace. bwrap reports an agent killed by
signal N as exit 128+N, and its own failures (e.g. `execvp` of a missing program) as exit 1
with a `bwrap: …` line on stderr; `sandbox_exit_code` and `launch_failure` undo both. Facts
checked with bubblewrap 0.8.0 (Debian `bubblewrap`), DESIGN.md §10.

What is shown is what was checked: every host object bound in (a declared mount, the mission
tree, an upstream drop, the workspace) is opened once by mc (`open_mounts`, `open_drops`,
`open_workspace`, mission_tree.open_tree), checked on that descriptor (its real path read back
from /proc/self/fd, its type, for the control plane's objects: no symlink from `.mc` down), and
that very descriptor is handed to bwrap (`--bind-fd` / `--ro-bind-fd`, passed with Popen's
pass_fds). A path resolved again later could by then name something else: an agent with a
writable mount (or one running unconfined) can swap a link in between (the mount race).
bwrap closes the descriptors before the agent starts; the parent closes them after spawning.
"""

from __future__ import annotations

import contextlib
import os
import resource
import shutil
import stat
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from .nofollow import PlantedLink, open_dirs, open_file_at, opened_dir, split_at_control

# What every agent may read: the programs, libraries and configuration of the system.
SYSTEM_DIRS: tuple[str, ...] = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/etc")
# Paths the sandbox builds itself; a private $HOME is never put over one of them.
_BUILT_IN: tuple[str, ...] = (*SYSTEM_DIRS, "/proc", "/dev", "/tmp")
HOSTNAME = "mc-sandbox"
INSTALL_HINT = (
    "bubblewrap (bwrap) is not installed: `apt-get install bubblewrap`, "
    "or opt out with `sandbox: none` on the agent or the mission (agents then run unconfined)"
)
_SIGNAL_EXIT_BASE = 128  # bwrap's exit status for an agent killed by signal N is 128 + N
# bwrap failures a fresh start can get past. The last two: what bwrap says when a path it
# binds by descriptor changed underneath (seen when a stored drop was replaced by an equal copy
# while a run bound it; the drop store no longer does that); a retry opens fresh descriptors.
_TEMPORARY_HINTS = (
    "Resource temporarily unavailable",
    "Cannot allocate memory",
    "Can't find source path /proc/self/fd/",
    "Race condition binding dirfd",
)


class SandboxUnavailable(Exception):
    """The sandbox cannot be built on this machine (no bwrap); the message names the fix."""


class MountRefused(Exception):
    """A declared mount cannot be granted (missing, or overlapping the mission repo); the
    message names it and why. The run fails permanently: retrying does not change the spec."""


@dataclass(frozen=True, slots=True)
class Limits:
    """setrlimit values for the sandboxed process tree; None leaves a limit as inherited.

    `processes` is RLIMIT_NPROC: it counts the user's processes and the kernel does not apply
    it to root, so it binds only when mc runs as another user.
    """

    memory_bytes: int | None = None  # RLIMIT_AS, per process
    processes: int | None = None  # RLIMIT_NPROC
    open_files: int | None = 4096  # RLIMIT_NOFILE
    file_size_bytes: int | None = 1 << 30  # RLIMIT_FSIZE
    cpu_seconds: int | None = None  # RLIMIT_CPU, per process

    def pairs(self) -> list[tuple[int, int]]:
        """(resource, value) for each limit that is set."""
        table = (
            (resource.RLIMIT_AS, self.memory_bytes),
            (resource.RLIMIT_NPROC, self.processes),
            (resource.RLIMIT_NOFILE, self.open_files),
            (resource.RLIMIT_FSIZE, self.file_size_bytes),
            (resource.RLIMIT_CPU, self.cpu_seconds),
        )
        return [(res, value) for res, value in table if value is not None]


@dataclass(frozen=True, slots=True)
class Mount:
    """A host path the agent declared, shown at the same path inside."""

    path: Path
    writable: bool = False


@dataclass(frozen=True, slots=True)
class MissionTree:
    """The applied mission tree: `commit` of the repo at `repo`, exported to `path`."""

    repo: Path
    commit: str
    path: Path  # .mc/trees/<commit>/ ; spawn exports it there once (mission_tree.open_tree)


@dataclass(frozen=True, slots=True)
class Sandbox:
    """How one run is confined. A LaunchRequest without one runs unconfined (`sandbox: none`).

    `tree` is the applied mission tree (no `.git`, no `.mc/`); `read_only` the upstream drop
    files the run was handed; `mounts` what the agent spec declares; `network` True shares the
    host's network (`network: host`); `protected` the host paths no mount may overlap (the
    mission repo: its `.git`, `.mc/` and working tree are mc's inputs).
    """

    tree: MissionTree | None = None
    read_only: tuple[Path, ...] = ()
    mounts: tuple[Mount, ...] = ()
    network: bool = False
    limits: Limits = field(default_factory=Limits)
    protected: tuple[Path, ...] = ()


def find_bwrap() -> str:
    """The bwrap program on PATH. Raises SandboxUnavailable (with the fix) when missing."""
    found = shutil.which("bwrap")
    if found is None:
        raise SandboxUnavailable(INSTALL_HINT)
    return found


@dataclass(frozen=True, slots=True)
class Bind:
    """One host object the sandbox shows at `dest`: the descriptor mc opened and checked, which
    bwrap binds as it is (`--bind-fd` / `--ro-bind-fd`), whatever the path names by then."""

    fd: int
    dest: Path
    writable: bool = False


def close_binds(binds: Iterable[Bind]) -> None:
    """Close the descriptors (after bwrap has started, or when the run cannot start)."""
    for bind in binds:
        with contextlib.suppress(OSError):
            os.close(bind.fd)


def open_mounts(sandbox: Sandbox) -> list[Bind]:
    """The declared mounts, each opened once (O_PATH; the declared path is followed, as the
    user wrote it) and checked on what the descriptor is: its real path must exist and must not
    overlap the mission repo (the repo, a folder above it, anything inside). Parents come first
    (later binds go over earlier ones). Raises MountRefused; nothing stays open then."""
    protected = [(p, Path(os.path.realpath(p))) for p in sandbox.protected]
    binds: list[Bind] = []
    try:
        for mount in sorted(sandbox.mounts, key=lambda m: len(m.path.parts)):
            binds.append(Bind(_open_mount(mount, protected), mount.path, mount.writable))
    except BaseException:
        close_binds(binds)
        raise
    return binds


def refused_mount(sandbox: Sandbox) -> str | None:
    """Why a declared mount cannot be granted, None when all can (a check only: a run binds the
    descriptors `open_mounts` returns, never a path checked here)."""
    try:
        close_binds(open_mounts(sandbox))
    except MountRefused as exc:
        return str(exc)
    return None


def _open_mount(mount: Mount, protected: Sequence[tuple[Path, Path]]) -> int:
    for given, real_repo in protected:  # the declared path itself, before anything is opened
        if _overlap(mount.path, given) or _overlap(mount.path, real_repo):
            raise MountRefused(_overlap_reason(mount.path, real_repo))
    try:
        fd = os.open(mount.path, os.O_PATH | os.O_CLOEXEC)
    except FileNotFoundError:
        raise MountRefused(f"mount {mount.path} does not exist on this machine") from None
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise MountRefused(f"mount {mount.path} cannot be opened: {reason}") from None
    try:
        real = _real_path(fd)
        if real is None:
            raise MountRefused(f"mount {mount.path} does not exist on this machine")
        for _given, real_repo in protected:
            if _overlap(real, real_repo):
                raise MountRefused(_overlap_reason(mount.path, real_repo))
    except BaseException:
        os.close(fd)
        raise
    return fd


def _real_path(fd: int) -> Path | None:
    """Where the object behind `fd` is now (the kernel's own name for it), None when it has no
    reachable path any more (removed, or the name read back is not this object)."""
    try:
        name = os.readlink(f"/proc/self/fd/{fd}")
        here = os.fstat(fd)
        there = os.stat(name, follow_symlinks=False)
    except OSError:
        return None
    if not name.startswith("/") or (there.st_dev, there.st_ino) != (here.st_dev, here.st_ino):
        return None  # "/x (deleted)", another namespace's name, or renamed meanwhile
    return Path(name)


def _overlap_reason(path: Path, repo: Path) -> str:
    return (
        f"mount {path} overlaps the mission repo {repo} "
        "(its .git, .mc/ and working tree are mc's own inputs; agents get the "
        "applied tree read-only as {repo} / $MC_REPO)"
    )


def _overlap(a: Path, b: Path) -> bool:
    return a == b or a in b.parents or b in a.parents


def open_drops(paths: Iterable[Path]) -> list[Bind]:
    """The upstream drop files, read-only, each opened without following a symlink from `.mc`
    down and checked to be a regular file; one removed since (GC) is simply not shown. Raises
    PlantedLink for a link or anything else in a drop's place; nothing stays open then."""
    binds: list[Bind] = []
    try:
        for path in paths:
            fd = _open_regular(path)
            if fd is not None:
                binds.append(Bind(fd, path))
    except BaseException:
        close_binds(binds)
        raise
    return binds


def _open_regular(path: Path) -> int | None:
    try:
        with opened_dir(path.absolute().parent, create=False) as dir_fd:
            fd = open_file_at(dir_fd, path.name, os.O_PATH, path)
    except FileNotFoundError:
        return None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):  # O_PATH|O_NOFOLLOW opens a link itself: refused here
        os.close(fd)
        raise PlantedLink(path, "a symlink" if stat.S_ISLNK(mode) else "not a regular file")
    return fd


def open_workspace(path: Path) -> Bind:
    """The run's workspace (writable), opened without following a symlink from `.mc` down."""
    top, names = split_at_control(path)
    return Bind(open_dirs(top, names, create=False), path, writable=True)


def bwrap_argv(
    bwrap: str,
    sandbox: Sandbox,
    workspace: Path | Bind,
    command: Sequence[str],
    home: str | None = None,
    binds: Sequence[Bind] = (),
) -> list[str]:
    """The full argv that runs `command` confined, with `workspace` as its cwd.

    `binds` are the descriptors of the sandbox's mounts (parents first), its tree and its drops
    (open_mounts, mission_tree.open_tree, open_drops): they are shown only through these, never
    by path. `workspace` is a Bind too (open_workspace), except a directory only mc can reach
    (mc doctor's own temp dir), bound by path. `home` (the agent's $HOME) gets a private empty
    tmpfs. Pure apart from looking at which system directories exist and which are symlinks
    (merged /usr: /bin -> usr/bin is recreated as the same link inside).
    """
    # --cap-drop ALL: started by root, bwrap would leave the agent every capability inside its
    # user namespace, enough to remount the read-only binds read-write (/usr, /etc, the tree).
    argv = [bwrap, "--unshare-all", "--cap-drop", "ALL", "--die-with-parent", "--new-session"]
    argv += ["--hostname", HOSTNAME] + (["--share-net"] if sandbox.network else [])
    argv += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]
    argv += _system_dirs()
    if home is not None and _private_home_ok(home):
        argv += ["--tmpfs", home]
    for bind in binds:
        argv += _bind_fd(bind)
    if isinstance(workspace, Bind):
        argv += [*_bind_fd(workspace), "--chdir", str(workspace.dest)]
    else:
        argv += ["--bind", str(workspace), str(workspace), "--chdir", str(workspace)]
    return [*argv, "--", *command]


def _bind_fd(bind: Bind) -> list[str]:
    return ["--bind-fd" if bind.writable else "--ro-bind-fd", str(bind.fd), str(bind.dest)]


def _private_home_ok(home: str) -> bool:
    path = Path(home)
    if not path.is_absolute() or path == Path("/"):
        return False
    return not any(_overlap(path, Path(built)) for built in _BUILT_IN)


def _system_dirs() -> list[str]:
    out: list[str] = []
    for path in SYSTEM_DIRS:
        if os.path.islink(path):
            out += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            out += ["--ro-bind", path, path]
    return out


_PRLIMIT_FLAGS = {
    resource.RLIMIT_AS: "--as",
    resource.RLIMIT_NPROC: "--nproc",
    resource.RLIMIT_NOFILE: "--nofile",
    resource.RLIMIT_FSIZE: "--fsize",
    resource.RLIMIT_CPU: "--cpu",
}


def prlimit_argv(prlimit: str, limits: Limits) -> list[str]:
    """The util-linux `prlimit` prefix that sets `limits` (soft = hard, so the agent cannot
    raise them again) and execs what follows. Preferred to `limiter`: a preexec function
    makes Python fork mc itself instead of vfork-ing, which costs ~7 ms per run for an mc of a
    few hundred MB, while prlimit's exec costs ~1 ms."""
    flags = [f"{_PRLIMIT_FLAGS[res]}={value}:{value}" for res, value in limits.pairs()]
    return [prlimit, *flags, "--"]


def find_prlimit() -> str | None:
    """util-linux `prlimit` on PATH (or in /usr/bin), None without it."""
    return shutil.which("prlimit") or shutil.which("prlimit", path="/usr/bin:/bin")


def limiter(limits: Limits) -> Callable[[], None]:
    """A preexec function that applies `limits` in the child before bwrap starts (used only
    when there is no `prlimit`). Soft and hard limits are both set.
    """
    pairs = limits.pairs()

    def apply() -> None:
        for res, value in pairs:
            resource.setrlimit(res, (value, value))

    return apply


def sandbox_exit_code(returncode: int) -> int:
    """bwrap's exit status in the Popen convention: 128+N (agent killed by signal N) -> -N."""
    if _SIGNAL_EXIT_BASE < returncode < _SIGNAL_EXIT_BASE + 65:
        return _SIGNAL_EXIT_BASE - returncode
    return returncode


def launch_failure(
    returncode: int, last_stderr: str | None, argv0: str
) -> tuple[Literal["failed", "retry"], str] | None:
    """bwrap's own failure (exit 1, a `bwrap: …` line last on stderr) as the launch error it
    stands for: a missing program is permanent, as it is without the sandbox."""
    if returncode != 1 or last_stderr is None or not last_stderr.startswith("bwrap: "):
        return None
    what = last_stderr.removeprefix("bwrap: ")
    if what.startswith("execvp "):
        reason = what.rsplit(": ", 1)[-1]
        if reason == "No such file or directory":
            hint = ""
            if os.path.isabs(argv0) and os.path.exists(argv0):
                hint = " (it exists on the host, not in the sandbox: declare it in mounts)"
            return "failed", f"agent command not found: {argv0}{hint}"
        if reason == "Permission denied":
            return "failed", f"agent command not executable (permission denied): {argv0}"
        return "failed", f"could not start agent command {argv0}: {reason}"
    status: Literal["failed", "retry"] = (
        "retry" if any(h in what for h in _TEMPORARY_HINTS) else "failed"
    )
    return status, f"the sandbox could not start: {what}"
