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
from .mission_tree import TreeExportError, ensure_tree
from .nofollow import PlantedLink
from .procs import process_start_time
from .sandbox import (
    SandboxUnavailable,
    bwrap_argv,
    find_bwrap,
    find_prlimit,
    limiter,
    prlimit_argv,
    refused_mount,
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


def spawn_run(req: LaunchRequest, inherit_env: Sequence[str]) -> LiveRun | LaunchFailed:
    """Prepare the workspace and the logs, then start the agent with its pipes."""
    started_at = time.time()
    if not req.command:
        return LaunchFailed("failed", "agent command is empty", started_at)
    bwrap = prepare_sandbox(req, started_at)
    if isinstance(bwrap, LaunchFailed):
        return bwrap
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
    run = _start(req, paths, (stdout, stderr), inherit_env, started_at, bwrap)
    if isinstance(run, LaunchFailed):
        stdout.close()
        stderr.close()
    return run


def prepare_sandbox(req: LaunchRequest, started_at: float) -> str | LaunchFailed | None:
    """For a sandboxed run: the bwrap program, once its mounts are allowed and the mission
    tree is exported; None for an unconfined run. Problems come back as LaunchFailed."""
    sandbox = req.sandbox
    if sandbox is None:
        return None
    refused = refused_mount(sandbox)
    if refused is not None:
        return LaunchFailed("failed", one_line(refused), started_at)
    try:
        bwrap = find_bwrap()
        if sandbox.tree is not None:
            ensure_tree(sandbox.tree)
    except SandboxUnavailable as exc:
        return LaunchFailed("failed", str(exc), started_at)
    except (OSError, TreeExportError) as exc:
        message = one_line(f"could not export the mission tree: {exc}")
        return LaunchFailed("retry", message, started_at)
    return bwrap


def start_agent(
    req: LaunchRequest,
    paths: WorkspacePaths,
    env: dict[str, str],
    stdout: int,
    stderr: int,
    bwrap: str | None = None,
) -> subprocess.Popen[bytes]:
    """Create the agent process: its argv, run in its workspace as the leader of a new session
    (so a stop signals everything it started). A sandboxed run is bwrap (given the agent's
    environment and nothing more, under the agent's rlimits) running the argv confined.
    Raises OSError/ValueError if it cannot start."""
    argv = list(req.command)
    preexec = None
    if req.sandbox is not None:
        assert bwrap is not None, "prepare_sandbox finds bwrap for a sandboxed run"
        check_program(argv[0], env, paths.root)
        argv = bwrap_argv(bwrap, req.sandbox, paths.root, argv, env.get("HOME"))
        prlimit = find_prlimit()
        if prlimit is not None:
            argv = prlimit_argv(prlimit, req.sandbox.limits) + argv
        else:
            preexec = limiter(req.sandbox.limits)
    return subprocess.Popen(
        argv,
        cwd=paths.root,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=stdout,
        stderr=stderr,
        start_new_session=True,
        close_fds=True,
        preexec_fn=preexec,
    )


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
    bwrap: str | None,
) -> LiveRun | LaunchFailed:
    try:
        (out_r, out_w), (err_r, err_w) = _open_pipes()
    except OSError as exc:
        return LaunchFailed("retry", f"cannot create a pipe: {exc}", started_at)
    try:
        env = child_env(req, paths, inherit_env)
        proc = start_agent(req, paths, env, out_w, err_w, bwrap)
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
    if isinstance(exc, ValueError):
        return "failed", one_line(f"could not start agent command {argv0}: {exc}")
    if isinstance(exc, FileNotFoundError):
        return "failed", f"agent command not found: {argv0}"
    if isinstance(exc, PermissionError):
        return "failed", f"agent command not executable (permission denied): {argv0}"
    status: OutcomeStatus = "retry" if exc.errno in _TEMPORARY_ERRNOS else "failed"
    return status, one_line(f"could not start agent command {argv0}: {exc.strerror or exc}")
