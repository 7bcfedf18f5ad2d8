"""The per-run sandbox: the bubblewrap command line that confines one agent; built at spawn.

Each run gets new mount, PID, IPC, UTS, cgroup and network namespaces (`--unshare-all`; the
network comes back only with `network: host`). Inside, the agent sees the system directories
read-only, a private /proc, /dev and /tmp, its own workspace read-write, the applied mission
tree and the upstream drops it was handed read-only, and the host paths its agent declares —
nothing else: not /root, not mc's $HOME, not the host's /tmp, not the repo's `.git` or `.mc/`.
Every path keeps its host name inside, so task.json and the MC_* variables mean the same thing
in and out of the sandbox.

bwrap runs as PID 1 of the new PID namespace and exits when the agent does; the kernel then
kills whatever the agent left behind (daemons, `setsid` grandchildren). `--die-with-parent`
ties the sandbox to the process that spawned it. Facts checked with bubblewrap 0.8.0 (Debian
`bubblewrap`), DESIGN.md §10.
"""

from __future__ import annotations

import os
import resource
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

# What every agent may read: the programs, libraries and configuration of the system.
SYSTEM_DIRS: tuple[str, ...] = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/etc")
HOSTNAME = "mc-sandbox"
INSTALL_HINT = (
    "bubblewrap (bwrap) is not installed: `apt-get install bubblewrap`, "
    "or opt out with `sandbox: none` on the agent or the mission (agents then run unconfined)"
)


class SandboxUnavailable(Exception):
    """The sandbox cannot be built on this machine (no bwrap); the message names the fix."""


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
class Sandbox:
    """How one run is confined. A LaunchRequest without one runs unconfined (`sandbox: none`).

    `tree` is the applied mission tree (exported from the applied commit: no `.git`, no
    `.mc/`); `read_only` the upstream drop files the run was handed; `mounts` what the agent
    spec declares; `network` True shares the host's network (`network: host`).
    """

    tree: Path | None = None
    read_only: tuple[Path, ...] = ()
    mounts: tuple[Mount, ...] = ()
    network: bool = False
    limits: Limits = field(default_factory=Limits)


def find_bwrap() -> str:
    """The bwrap program on PATH. Raises SandboxUnavailable (with the fix) when missing."""
    found = shutil.which("bwrap")
    if found is None:
        raise SandboxUnavailable(INSTALL_HINT)
    return found


def bwrap_argv(bwrap: str, sandbox: Sandbox, workspace: Path, command: Sequence[str]) -> list[str]:
    """The full argv that runs `command` confined, with `workspace` as its cwd.

    Pure apart from looking at which system directories exist and which are symlinks (merged
    /usr: /bin -> usr/bin is recreated as the same link inside).
    """
    argv = [bwrap, "--unshare-all", "--die-with-parent", "--new-session"]
    argv += ["--hostname", HOSTNAME] + (["--share-net"] if sandbox.network else [])
    argv += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]
    argv += _system_dirs()
    if sandbox.tree is not None:
        argv += ["--ro-bind", str(sandbox.tree), str(sandbox.tree)]
    for path in sandbox.read_only:
        argv += ["--ro-bind", str(path), str(path)]
    for mount in sandbox.mounts:
        argv += ["--bind" if mount.writable else "--ro-bind", str(mount.path), str(mount.path)]
    argv += ["--bind", str(workspace), str(workspace), "--chdir", str(workspace)]
    return [*argv, "--", *command]


def _system_dirs() -> list[str]:
    out: list[str] = []
    for path in SYSTEM_DIRS:
        if os.path.islink(path):
            out += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            out += ["--ro-bind", path, path]
    return out


def limiter(limits: Limits) -> Callable[[], None]:
    """A preexec function that applies `limits` in the child before bwrap starts.

    Soft and hard limits are both set, so the agent cannot raise them again.
    """
    pairs = limits.pairs()

    def apply() -> None:
        for res, value in pairs:
            resource.setrlimit(res, (value, value))

    return apply
