"""What a run left behind when nobody watched it end (its reconciler died): its result.json,
read at the same boundary as a watched run's. Called by engine/recovery.py on restart."""

from __future__ import annotations

import time
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path

from .adapters import left_result
from .collect import with_drops
from .cost import apply_cap, with_cost
from .drop_store import store_drops
from .redact import as_text, redact_drops, redacted_report
from .types import AgentProtocol, DropCaps, Outcome
from .workspace import WorkspacePaths

RESULT_CAP_BYTES = 10 * 1024 * 1024  # as LaunchRequest.result_cap_bytes


def left_outcome(
    run_id: str,
    workspace: Path,
    protocol: AgentProtocol,
    per_run_cap: Decimal | None,
    secrets: Sequence[str],
    started_at: float,
) -> Outcome | None:
    """The outcome the agent itself reported (files protocol), or None when it left no
    complete, valid result.json (then the run was really cut short: it is abandoned)."""
    if protocol != "files":
        return None  # stdout and claude-code need the exit code to judge their output
    paths = WorkspacePaths(workspace.absolute())
    report = left_result(paths, RESULT_CAP_BYTES)
    if report is None:
        return None
    report = apply_cap(with_cost(report, paths, Decimal(0)), per_run_cap)
    # The mission's drop caps are not known here; the defaults bound what an orphan left.
    raw = [s.encode("utf-8", "surrogateescape") for s in secrets if s]
    text = as_text(raw)
    report, drops = with_drops(report, store_drops(paths.root, DropCaps(), raw))
    report = redacted_report(report, text)  # the refusal may name a drop too
    return Outcome(
        run_id=run_id,
        status=report.status,
        error=report.error,
        exit_code=None,
        output=report.output,
        outputs=report.outputs,
        cost_usd=report.cost_usd,
        tokens=report.tokens,
        memory=report.memory,
        drops=redact_drops(drops, text),
        stdout_path=paths.stdout_log,
        stderr_path=paths.stderr_log,
        started_at=started_at,
        ended_at=time.time(),
    )
