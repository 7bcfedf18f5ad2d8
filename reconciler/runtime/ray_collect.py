"""A Ray run's report recorded on the control plane exactly as a local run's: the returned
files are written into the run's own workspace (`.mc/work/<task>/<attempt>`, made here as
spawn makes it), then collect.outcome_of reads them through the same adapters, boundary, cost
caps, drop store and redaction. Nothing from the worker is trusted: sizes are capped again,
drop paths are checked, and the drop store re-checks names, caps and hashes."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, replace
from decimal import Decimal
from pathlib import Path

from .adapters import one_line
from .collect import outcome_of
from .live_run import Stop
from .nofollow import PlantedLink, open_file
from .ray_wire import COST_CAP_BYTES, LOG_NOTE_BYTES, WorkerReport
from .redact import as_text, redact_text
from .types import LaunchRequest, Outcome, OutcomeStatus, RunHandle
from .workspace import WorkspacePaths, prepare_workspace, secrets_to_redact


@dataclass(frozen=True, slots=True)
class Kept:
    """stdout's kept/truncated counts as the worker's CappedLog ended them."""

    kept: int
    truncated: bool


@dataclass(eq=False)
class RemoteEnd:
    """A Ray run's end in the shape collect.outcome_of reads (collect.EndedRun)."""

    req: LaunchRequest
    paths: WorkspacePaths
    handle: RunHandle
    returncode: int | None
    stop: Stop | None
    sigkilled: bool
    cost: Decimal
    started_at: float
    ended_at: float
    stdout: Kept


def failed_outcome(
    req: LaunchRequest, status: OutcomeStatus, error: str, started_at: float
) -> Outcome:
    """An outcome for a run that returned no report (never started, canceled, worker died)."""
    message = redact_text(one_line(error), as_text(secrets_to_redact(req)))
    return Outcome(req.run_id, status, message, None, started_at=started_at, ended_at=time.time())


def record(req: LaunchRequest, report: WorkerReport) -> Outcome:
    """The outcome of `req` from its worker's report (req: the control plane's request)."""
    if report.run_id != req.run_id:
        return failed_outcome(req, "retry", "the Ray worker reported another run", time.time())
    if report.launch_failed is not None:
        status, error = report.launch_failed
        return failed_outcome(req, status, error, report.started_at)
    try:
        paths = prepare_workspace(req)
        _write_files(paths, req, report)
        problem = _write_drops(paths, req, report)
    except PlantedLink as exc:
        return failed_outcome(req, "failed", f"unsafe workspace: {exc}", report.started_at)
    except OSError as exc:
        why = f"could not store the Ray run's files in {req.workspace}: {exc.strerror or exc}"
        return failed_outcome(req, "retry", why, report.started_at)
    end = RemoteEnd(
        req=req,
        paths=paths,
        handle=RunHandle(req.run_id, 0, 0),
        returncode=report.returncode,
        stop=report.stop,
        sigkilled=report.sigkilled,
        cost=Decimal(0),
        started_at=report.started_at,
        ended_at=report.ended_at,
        stdout=Kept(report.stdout_kept, report.stdout_truncated),
    )
    outcome = outcome_of(end)
    refused = report.drops_refused or problem
    if refused is None or outcome.status in ("failed", "canceled", "abandoned"):
        return outcome
    status, reason = refused  # as collect.with_drops: nothing recorded, the run fails
    reason = redact_text(reason, as_text(secrets_to_redact(req)))
    return replace(outcome, status=status, error=reason, output=None, outputs={}, drops=())


def _write_files(paths: WorkspacePaths, req: LaunchRequest, report: WorkerReport) -> None:
    caps = {
        "result.json": req.result_cap_bytes + 1,
        "cost.json": COST_CAP_BYTES,
        "stdout.log": req.log_cap_bytes + LOG_NOTE_BYTES,
        "stderr.log": req.log_cap_bytes + LOG_NOTE_BYTES,
    }
    for name, cap in caps.items():
        data = report.files.get(name)
        if data is None and name not in ("stdout.log", "stderr.log"):
            continue
        _write(paths.root / name, (data or b"")[:cap])


def _write_drops(
    paths: WorkspacePaths, req: LaunchRequest, report: WorkerReport
) -> tuple[OutcomeStatus, str] | None:
    """out/ as the worker found it, for the drop store to take in again; a report over the
    caps or with a path that is not a plain relative one is refused (the run fails)."""
    caps = req.drop_limits
    if len(report.drops) > caps.max_files:
        return "failed", f"drops refused: {len(report.drops)} files; limit {caps.max_files}"
    if sum(len(data) for _, data in report.drops) > caps.max_run_bytes:
        return "failed", f"drops refused: more than {caps.max_run_bytes} bytes in all"
    for rel, data in report.drops:
        parts = rel.split("/")
        if any(part in ("", ".", "..") or "\0" in part for part in parts):
            return "failed", f"drops refused: the Ray worker sent the path {rel[:200]!r}"
        target = paths.out_dir.joinpath(*parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        _write(target, data)
    return None


def _write(path: Path, data: bytes) -> None:
    fd = open_file(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
