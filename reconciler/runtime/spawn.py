"""Spawning a local run: workspace, logs, pipes, the agent process; LocalExecutor.launch calls it.

`start_agent` is the one place an agent process is created (argv, cwd, environment, a new
session); the sandbox of DESIGN §9 wraps the argv there. Anything that goes wrong before the
agent runs is returned as a `LaunchFailed` value, classified temporary (retry) or permanent.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import shutil
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from .adapters import one_line
from .live_run import LiveRun
from .logs import CappedLog
from .mission_tree import TreeExportError, UnsafeTree, open_tree
from .nofollow import PlantedLink
from .procs import process_start_time
from .sandbox import (
    Bind,
    MountRefused,
    Sandbox,
    SandboxUnavailable,
    bwrap_argv,
    close_binds,
    find_bwrap,
    find_prlimit,
    limiter,
    open_drops,
    open_mounts,
    open_workspace,
    prlimit_argv,
)
from .types import LaunchRequest, OutcomeStatus, RunHandle
from .workspace import WorkspacePaths, child_env, prepare_workspace, secrets_to_redact

_PIPE_SIZE = 1 << 20
_TEMPORARY_ERRNOS = {errno.EAGAIN, errno.ENOMEM, errno.EMFILE, errno.ENFILE, errno.ETXTBSY}


@dataclass(frozen=True, slots=True)
class LaunchFailed:
    """The run could not start: how that counts, why, and when it was tried."""

    status: OutcomeStatus
    error: str
    started_at: float  # wall clock


@dataclass(frozen=True, slots=True)
class SandboxSetup:
    """A sandboxed run's bwrap and the checked descriptors it binds (mounts, tree, drops), open
    from prepare_sandbox until the agent has started (or could not); then closed."""

    bwrap: str
    binds: tuple[Bind, ...] = ()


def spawn_run(req: LaunchRequest, inherit_env: Sequence[str]) -> LiveRun | LaunchFailed:
    """Prepare the workspace and the logs, then start the agent with its pipes."""
    started_at = time.time()
    if not req.command:
        return LaunchFailed("failed", "agent command is empty", started_at)
    setup = prepare_sandbox(req, started_at)
    if isinstance(setup, LaunchFailed):
        return setup
    try:
        return _spawn_prepared(req, inherit_env, started_at, setup)
    finally:  # bwrap holds its own copies from here (or never started)
        if setup is not None:
            close_binds(setup.binds)


def _spawn_prepared(
    req: LaunchRequest, inherit_env: Sequence[str], started_at: float, setup: SandboxSetup | None
) -> LiveRun | LaunchFailed:
    try:
        paths = prepare_workspace(req)
        secrets = secrets_to_redact(req)
        stdout = CappedLog(paths.stdout_log, "stdout", req.log_cap_bytes, secrets)
        stderr = CappedLog(paths.stderr_log, "stderr", req.log_cap_bytes, secrets)
    except PlantedLink as exc:  # an agent's doing: no retry removes it, a person should look
        return LaunchFailed("failed", one_line(f"unsafe workspace: {exc}"), started_at)
    except OSError as exc:
        message = f"could not prepare workspace {req.workspace}: {exc.strerror or exc}"
        return LaunchFailed("retry", one_line(message), started_at)
    run = _start(req, paths, (stdout, stderr), inherit_env, started_at, setup)
    if isinstance(run, LaunchFailed):
        stdout.close()
        stderr.close()
    return run


def prepare_sandbox(req: LaunchRequest, started_at: float) -> SandboxSetup | LaunchFailed | None:
    """For a sandboxed run: the bwrap program and the descriptors it will bind, each opened
    and checked once (mounts allowed, the mission tree exported, drops not planted links);
    None for an unconfined run. Problems come back as LaunchFailed, with nothing left open."""
    sandbox = req.sandbox
    if sandbox is None:
        return None
    try:
        bwrap = find_bwrap()
        mounts = open_mounts(sandbox)
    except (SandboxUnavailable, MountRefused) as exc:
        return LaunchFailed("failed", one_line(str(exc)), started_at)
    try:
        return SandboxSetup(bwrap, (*mounts, *_open_tree_and_drops(sandbox)))
    except (OSError, TreeExportError, UnsafeTree) as exc:
        close_binds(mounts)
        return _tree_or_drop_failure(exc, started_at)
    except BaseException:
        close_binds(mounts)
        raise


def _open_tree_and_drops(sandbox: Sandbox) -> list[Bind]:
    binds: list[Bind] = []
    if sandbox.tree is not None:
        binds.append(Bind(open_tree(sandbox.tree), sandbox.tree.path))
    try:
        return [*binds, *open_drops(sandbox.read_only)]
    except BaseException:
        close_binds(binds)
        raise


def _tree_or_drop_failure(exc: OSError | TreeExportError | UnsafeTree, at: float) -> LaunchFailed:
    """Planted links and unsafe trees are an agent's doing: no retry removes them, a person
    should look. A disk or git problem may pass."""
    if isinstance(exc, UnsafeTree):
        return LaunchFailed("failed", one_line(f"unsafe mission tree: {exc}"), at)
    if isinstance(exc, PlantedLink):
        return LaunchFailed("failed", one_line(f"unsafe upstream drop: {exc}"), at)
    return LaunchFailed("retry", one_line(f"could not export the mission tree: {exc}"), at)


def start_agent(
    req: LaunchRequest,
    paths: WorkspacePaths,
    env: dict[str, str],
    stdout: int,
    stderr: int,
    setup: SandboxSetup | None = None,
) -> subprocess.Popen[bytes]:
    """Create the agent process: its argv, run in its workspace as the leader of a new session
    (so a stop signals everything it started). A sandboxed run is bwrap (given the agent's
    environment and nothing more, under the agent's rlimits) running the argv confined; it
    binds the descriptors of `setup` and of the workspace (opened here without following a
    link), which the child gets with pass_fds; the workspace's is closed here once started.
    Raises OSError/ValueError if it cannot start (PlantedLink for a workspace swapped for a
    link since it was made)."""
    argv = list(req.command)
    preexec = None
    workspace: Bind | None = None
    if req.sandbox is not None:
        assert setup is not None, "prepare_sandbox opens the sandbox of a sandboxed run"
        check_program(argv[0], env, paths.root)
        workspace = open_workspace(paths.root)
        home = env.get("HOME")
        argv = bwrap_argv(setup.bwrap, req.sandbox, workspace, argv, home, setup.binds)
        prlimit = find_prlimit()
        if prlimit is not None:
            argv = prlimit_argv(prlimit, req.sandbox.limits) + argv
        else:
            preexec = limiter(req.sandbox.limits)
    fds = () if setup is None or workspace is None else (*setup.binds, workspace)
    try:
        return subprocess.Popen(
            argv,
            cwd=paths.root,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
            start_new_session=True,
            close_fds=True,
            pass_fds=tuple(bind.fd for bind in fds),
            preexec_fn=preexec,
        )
    finally:
        if workspace is not None:
            close_binds([workspace])


def check_program(argv0: str, env: Mapping[str, str], cwd: Path) -> None:
    """Raise what exec would for a program this machine does not have at all, so a missing
    program starts no bwrap, just as it starts no process unconfined. (One the host has but
    the sandbox does not show is bwrap's to report: see sandbox.launch_failure.)"""
    if "/" not in argv0:
        if shutil.which(argv0, path=env.get("PATH", os.defpath)) is None:
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), argv0)
        return
    path = cwd / argv0
    if not path.exists():
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), argv0)
    if path.is_dir() or not os.access(path, os.X_OK):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), argv0)


def _start(
    req: LaunchRequest,
    paths: WorkspacePaths,
    logs: tuple[CappedLog, CappedLog],
    inherit_env: Sequence[str],
    started_at: float,
    setup: SandboxSetup | None,
) -> LiveRun | LaunchFailed:
    try:
        (out_r, out_w), (err_r, err_w) = _open_pipes()
    except OSError as exc:
        return LaunchFailed("retry", f"cannot create a pipe: {exc}", started_at)
    try:
        env = child_env(req, paths, inherit_env)
        proc = start_agent(req, paths, env, out_w, err_w, setup)
    except (OSError, ValueError) as exc:  # ValueError: a NUL byte in argv or env
        os.close(out_r)
        os.close(err_r)
        status, message = _launch_error(exc, req.command[0])
        return LaunchFailed(status, message, started_at)
    finally:
        os.close(out_w)
        os.close(err_w)
    return LiveRun(
        req=req,
        paths=paths,
        proc=proc,
        handle=RunHandle(req.run_id, proc.pid, process_start_time(proc.pid) or 0),
        stdout=logs[0],
        stderr=logs[1],
        stream_fds=(out_r, err_r),
        started_at=started_at,
        deadline=time.monotonic() + req.timeout_s,
    )


def _open_pipes() -> tuple[tuple[int, int], tuple[int, int]]:
    """(read, write) for stdout and for stderr; on OSError nothing stays open."""
    out = _open_pipe()
    try:
        return out, _open_pipe()
    except OSError:
        os.close(out[0])
        os.close(out[1])
        raise


def _open_pipe() -> tuple[int, int]:
    r, w = os.pipe2(os.O_CLOEXEC)
    with contextlib.suppress(OSError):  # a bigger pipe means fewer wake-ups for chatty agents
        fcntl.fcntl(r, fcntl.F_SETPIPE_SZ, _PIPE_SIZE)
    return r, w


def _launch_error(exc: OSError | ValueError, argv0: str) -> tuple[OutcomeStatus, str]:
    if isinstance(exc, PlantedLink):  # the workspace swapped for a link since it was made
        return "failed", one_line(f"unsafe workspace: {exc}")
    if isinstance(exc, ValueError):
        return "failed", one_line(f"could not start agent command {argv0}: {exc}")
    if isinstance(exc, FileNotFoundError):
        return "failed", f"agent command not found: {argv0}"
    if isinstance(exc, PermissionError):
        return "failed", f"agent command not executable (permission denied): {argv0}"
    status: OutcomeStatus = "retry" if exc.errno in _TEMPORARY_ERRNOS else "failed"
    return status, one_line(f"could not start agent command {argv0}: {exc.strerror or exc}")
