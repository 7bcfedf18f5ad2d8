"""One run on a Ray worker node: materialise, run the agent as the local executor does, pack.

`run_job` is what the Ray task executes (ray_executor.py wraps it; this module does not
import ray). On the worker it:

1. materialises the run under its own directory `<base>/<namespace>/runs/<run_id>/.mc/`:
   the workspace `work/<task>/<attempt>` (task.json), the upstream drops it reads
   (`drops/xx/<sha256>`, checked against their hash), and — shared by the runs of one commit —
   the applied mission tree `<base>/<namespace>/.mc/trees/<commit>` (unpacked from the tar the
   control plane sent, made read-only, as mission_tree leaves an export);
2. rewrites the control plane's paths in argv, env and task.json to those copies, then starts
   the agent with spawn.spawn_run — the same bubblewrap sandbox, limits and network policy as a
   local run — and supervises it with supervise.Supervisor (timeout, heartbeat file, per-run
   cost cap, SIGTERM then SIGKILL), calling `beat` every few seconds for the control plane;
3. returns a WorkerReport: the exit, the stop, result.json / cost.json / the logs (each under
   its cap) and out/ (through drop_store, bounded by the run's drop caps), then removes the
   run's directory. The control plane records it through the same collection and boundary as
   a local run (ray_collect.py), trusting none of it.

Secrets (RunSecrets) reach only the agent's environment: nothing here writes them to disk.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import math
import os
import shutil
import stat
import tarfile
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from .drop_store import DropsRefused, store_drops
from .live_run import LiveRun
from .mission_tree import make_read_only
from .nofollow import read_part
from .pump import OutputPump
from .ray_wire import (
    COST_CAP_BYTES,
    LOG_NOTE_BYTES,
    RunSecrets,
    WorkerJob,
    WorkerReport,
)
from .sandbox import MissionTree
from .spawn import LaunchFailed, spawn_run
from .supervise import Supervisor, next_due, watch_run
from .types import LaunchRequest
from .workspace import DEFAULT_INHERITED_ENV, WorkspacePaths, secrets_to_redact

WORKDIR_ENV = "MC_RAY_WORKDIR"  # where workers keep runs; default <tmp>/mc-ray-<uid>


def worker_base() -> Path:
    """The worker's directory for mc runs (MC_RAY_WORKDIR, else a per-user temp dir)."""
    given = os.environ.get(WORKDIR_ENV)
    return Path(given) if given else Path(tempfile.gettempdir()) / f"mc-ray-{os.geteuid()}"


def own_dir(path: Path) -> Path:
    """`path`, made 0700 if missing; refused (OSError) unless it is a real directory of this
    user that nobody else may write: in a shared /tmp another user could have made it first."""
    with contextlib.suppress(FileExistsError):
        path.mkdir(mode=0o700, parents=True)
    info = path.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid() or info.st_mode & 0o022:
        raise PermissionError(f"{path} is not a private directory of uid {os.geteuid()}")
    return path


def run_job(
    job: WorkerJob,
    secrets: RunSecrets,
    tree_tar: bytes | None,
    drop_blobs: Sequence[bytes],
    node_id: str = "",
    beat: Callable[[], None] | None = None,
) -> WorkerReport:
    """Run one attempt on this machine and report how it ended (never raises for the agent's
    doing; a bug or a broken worker disk raises, which the control plane sees as a failed
    Ray task and retries)."""
    started_at = time.time()
    namespace_dir = own_dir(worker_base()) / job.namespace
    run_dir = namespace_dir / "runs" / job.req.run_id
    try:
        req = _materialise(job, secrets, tree_tar, drop_blobs, namespace_dir, run_dir)
        return _run(job, req, node_id, started_at, beat)
    finally:
        _remove(run_dir)


def _materialise(
    job: WorkerJob,
    secrets: RunSecrets,
    tree_tar: bytes | None,
    drop_blobs: Sequence[bytes],
    namespace_dir: Path,
    run_dir: Path,
) -> LaunchRequest:
    """The LaunchRequest as it runs here: worker paths, the secrets back in."""
    cp = job.req
    mc = run_dir / ".mc"
    (mc / "work").mkdir(parents=True, exist_ok=True)
    workspace = mc / "work" / cp.task / str(cp.attempt)
    moves = {str(cp.workspace.absolute()): str(workspace), job.cp_drops_dir: str(mc / "drops")}
    sandbox = cp.sandbox
    if sandbox is not None:
        tree = None
        if sandbox.tree is not None and tree_tar is not None and job.tree_commit is not None:
            tree_dir = namespace_dir / ".mc" / "trees" / job.tree_commit
            _unpack_tree(tree_tar, tree_dir)
            moves[str(sandbox.tree.path)] = str(tree_dir)
            tree = MissionTree(namespace_dir, job.tree_commit, tree_dir)
        read_only = tuple(
            _put_drop(mc / "drops", sha, blob)
            for sha, blob in zip(job.drops, drop_blobs, strict=True)
        )
        sandbox = replace(sandbox, tree=tree, read_only=read_only, protected=(namespace_dir,))
    env = {key: _moved(value, moves) for key, value in secrets.env.items()}
    return replace(
        cp,
        workspace=workspace,
        command=tuple(_moved(arg, moves) for arg in cp.command),
        env=env,
        task_json=_moved_json(cp.task_json, moves),
        secret_values=secrets.secret_values,
        sandbox=sandbox,
    )


def _moved(text: str, moves: Mapping[str, str]) -> str:
    for old in sorted(moves, key=len, reverse=True):
        text = text.replace(old, moves[old])
    return text


def _moved_json(value: Any, moves: Mapping[str, str]) -> Any:
    if isinstance(value, str):
        return _moved(value, moves)
    if isinstance(value, Mapping):
        return {key: _moved_json(item, moves) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_moved_json(item, moves) for item in value]
    return value


def _unpack_tree(tar: bytes, dest: Path) -> None:
    """Unpack once per commit: into a temp dir beside dest, read-only, renamed into place (a
    concurrent run's rename first is fine; mission_tree.open_tree then checks what is there)."""
    if dest.exists():
        return
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        with tarfile.open(fileobj=io.BytesIO(tar), mode="r:") as archive:
            archive.extractall(tmp, filter="data")  # no links out, no devices, no absolute
        make_read_only(tmp)
        with contextlib.suppress(OSError):  # another run put it there first
            os.rename(tmp, dest)
    finally:
        _remove(tmp)


def _put_drop(store: Path, sha256: str, blob: bytes) -> Path:
    """An upstream drop's bytes at its content address, checked against the hash."""
    if hashlib.sha256(blob).hexdigest() != sha256:
        raise ValueError(f"upstream drop {sha256} arrived corrupted")
    path = store / sha256[:2] / sha256
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o444)
    with os.fdopen(fd, "wb") as f:
        f.write(blob)
    return path


def _run(
    job: WorkerJob,
    req: LaunchRequest,
    node_id: str,
    started_at: float,
    beat: Callable[[], None] | None,
) -> WorkerReport:
    run = spawn_run(req, DEFAULT_INHERITED_ENV)
    if isinstance(run, LaunchFailed):
        return WorkerReport(req.run_id, node_id, started_at, time.time(), (run.status, run.error))
    _drive(run, job.grace_s, job.beat_every_s, beat)
    return _pack(run, req, node_id)


def _drive(
    run: LiveRun, grace_s: float, beat_every_s: float, beat: Callable[[], None] | None
) -> None:
    """What LocalExecutor does for one run: pump its pipes, step the supervisor until the
    process is reaped and its pipes are drained, beating for the control plane meanwhile."""
    cond = threading.Condition()
    pump = OutputPump()

    def touch() -> None:
        with cond:
            cond.notify_all()

    def stream_done() -> None:
        with cond:
            run.open_streams -= 1
            cond.notify_all()

    def leader_done() -> None:
        with cond:
            run.leader_exited = True
            cond.notify_all()

    supervisor = Supervisor(grace_s, pump, touch)
    next_beat = 0.0
    try:
        watch_run(pump, run, stream_done, leader_done)
        with cond:
            while not run.finishable:
                now = time.monotonic()
                supervisor.step(run, now)
                if beat is not None and now >= next_beat:
                    beat()
                    next_beat = now + beat_every_s
                if run.finishable:
                    break
                due = min(next_due(run), next_beat if beat is not None else math.inf)
                cond.wait(max(min(due - time.monotonic(), 1.0), 0.005))
    finally:
        pump.stop()  # closes what a straggler still held, so the logs are final


def _pack(run: LiveRun, req: LaunchRequest, node_id: str) -> WorkerReport:
    paths = run.paths
    caps = {
        "result.json": req.result_cap_bytes + 1,  # one more: the boundary sees "too big"
        "cost.json": COST_CAP_BYTES,
        "stdout.log": req.log_cap_bytes + LOG_NOTE_BYTES,
        "stderr.log": req.log_cap_bytes + LOG_NOTE_BYTES,
    }
    files = {name: data for name, cap in caps.items() if (data := _read(paths, name, cap))}
    stored = store_drops(paths.root, req.drop_limits, secrets_to_redact(req))
    if isinstance(stored, DropsRefused):
        drops: tuple[tuple[str, bytes], ...] = ()
        refused = (stored.status, stored.reason)
    else:
        drops = tuple((d.path, d.local_path.read_bytes()) for d in stored)
        refused = None
    return WorkerReport(
        run_id=req.run_id,
        node_id=node_id,
        started_at=run.started_at,
        ended_at=run.ended_at or time.time(),
        returncode=run.returncode,
        stop=run.stop,
        sigkilled=run.sigkilled,
        stdout_kept=run.stdout.kept,
        stdout_truncated=run.stdout.truncated,
        files=files,
        drops=drops,
        drops_refused=refused,
    )


def _read(paths: WorkspacePaths, name: str, cap: int) -> bytes | None:
    """At most cap bytes of a file the agent may have replaced (never through a link)."""
    got = read_part(paths.root / name, cap)
    return got.data if got.kind == "ok" else None


def _remove(top: Path) -> None:
    """Remove a run's directory, read-only parts included."""
    if not os.path.lexists(top):
        return
    for dirpath, _dirnames, _filenames in os.walk(top):
        with contextlib.suppress(OSError):
            Path(dirpath).chmod(0o755)
    shutil.rmtree(top, ignore_errors=True)
