"""What an agent says it spent (cost.json) and the per-run cap; supervise, collect and leftovers."""

from __future__ import annotations

import json
from dataclasses import replace
from decimal import Decimal, InvalidOperation

from .adapters import AgentReport
from .workspace import WorkspacePaths, read_capped

_COST_FILE_CAP = 64 * 1024


def parse_cost(paths: WorkspacePaths) -> Decimal:
    """cost_usd from the agent's running cost.json; 0 if absent or unreadable."""
    read = read_capped(paths.cost_json, _COST_FILE_CAP)
    if read.kind != "ok":
        return Decimal(0)
    try:
        value = json.loads(read.data, parse_float=Decimal)["cost_usd"]
        cost = Decimal(value) if not isinstance(value, bool) else Decimal(0)
    except (ValueError, TypeError, KeyError, InvalidOperation):
        return Decimal(0)
    return cost if cost.is_finite() and cost >= 0 else Decimal(0)


def apply_cap(report: AgentReport, cap: Decimal | None) -> AgentReport:
    """A final cost above the per-run cap fails the run permanently (the cost is kept)."""
    if cap is None or report.cost_usd <= cap or report.status in ("canceled", "failed"):
        return report
    message = f"per-run budget ${cap} exceeded: ${report.cost_usd} reported"
    return replace(report, status="failed", error=message)
