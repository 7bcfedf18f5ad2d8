"""Collection: turn an ended run into its Outcome (adapter verdict, stops, caps, drops);
LocalExecutor calls it once a run is finishable or shutdown gives up on it, the Ray executor
once a worker's files are back in the control plane's workspace (ray_collect.py)."""

from __future__ import annotations

import time
from dataclasses import replace
from decimal import Decimal
from typing import Protocol

from .adapters import AgentReport, Finished, interpret, last_stderr_line
from .cost import apply_cap, parse_cost, with_cost
from .drop_store import DropsRefused, store_drops
from .live_run import Stop
from .redact import as_text, redact_drops, redacted_report
from .sandbox import launch_failure
from .types import Drop, LaunchRequest, Outcome, RunHandle
from .workspace import WorkspacePaths, secrets_to_redact


class KeptStream(Protocol):
    """How much of stdout was kept (live_run's CappedLog, or its count from a Ray worker)."""

    @property
    def kept(self) -> int: ...
    @property
    def truncated(self) -> bool: ...


class EndedRun(Protocol):
    """What collection reads of an ended run: a local LiveRun, or a Ray run's record."""

    req: LaunchRequest
    paths: WorkspacePaths
    handle: RunHandle
    returncode: int | None
    stop: Stop | None
    sigkilled: bool
    cost: Decimal
    started_at: float
    ended_at: float

    @property
    def stdout(self) -> KeptStream: ...


def outcome_of(run: EndedRun) -> Outcome:
    """Combine the adapter's report with the executor's own knowledge (stops, caps); the
    run's secret values redacted from everything it returned (redact.py)."""
    run.cost = max(run.cost, parse_cost(run.paths))
    req = run.req
    report = with_cost(_verdict(run), run.paths, run.cost)
    if run.stop is None or run.stop.kind != "budget":  # a budget stop was judged already
        report = apply_cap(report, req.per_run_cap_usd, req.cap_label, req.cap_status)
    secrets = secrets_to_redact(req)
    report, drops = with_drops(report, store_drops(run.paths.root, req.drop_limits, secrets))
    report = redacted_report(report, as_text(secrets))  # the refusal may name a drop too
    return Outcome(
        run_id=run.handle.run_id,
        status=report.status,
        error=report.error,
        exit_code=run.returncode,
        output=report.output,
        outputs=report.outputs,
        cost_usd=report.cost_usd,
        tokens=report.tokens,
        memory=report.memory,
        drops=redact_drops(drops, as_text(secrets)),
        stdout_path=run.paths.stdout_log,
        stderr_path=run.paths.stderr_log,
        started_at=run.started_at,
        ended_at=run.ended_at or time.time(),
    )


def with_drops(
    report: AgentReport, stored: tuple[Drop, ...] | DropsRefused
) -> tuple[AgentReport, tuple[Drop, ...]]:
    """The report and the drops to record. Drops that were refused (over a cap, unsafe, or
    the disk) record nothing and turn a run that did not already fail or stop into a failure:
    permanent for a cap (the same output would break it again), temporary for the disk."""
    if not isinstance(stored, DropsRefused):
        return report, stored
    if report.status in ("failed", "canceled", "abandoned"):
        return report, ()
    return replace(report, status=stored.status, error=stored.reason, output=None, outputs={}), ()


def _verdict(run: EndedRun) -> AgentReport:
    if run.returncode is None:  # survived SIGKILL until shutdown gave up (stuck in D)
        return AgentReport("retry", "did not exit after SIGKILL; left running")
    if run.req.sandbox is not None and run.stop is None:  # bwrap could not start the agent
        stderr = last_stderr_line(run.paths.stderr_log)
        failed = launch_failure(run.returncode, stderr, run.req.command[0])
        if failed is not None:
            return AgentReport(*failed)
    fin = Finished(
        returncode=run.returncode,
        paths=run.paths,
        stdout_kept=run.stdout.kept,
        stdout_truncated=run.stdout.truncated,
        result_cap_bytes=run.req.result_cap_bytes,
    )
    report = interpret(run.req.protocol, fin)
    if run.stop is None:
        return report
    how = " (SIGTERM, then SIGKILL)" if run.sigkilled else " (SIGTERM)"
    message = run.stop.message + (how if run.stop.kind != "cancel" else "")
    # What the agent managed to report about spend still counts.
    return AgentReport(run.stop.status, message, cost_usd=report.cost_usd, tokens=report.tokens)
