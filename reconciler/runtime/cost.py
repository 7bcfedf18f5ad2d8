"""What an agent says it spent (cost.json) and the per-run cap; supervise, collect and leftovers.

cost.json is read at the one boundary (boundary.py): `{"cost_usd": <number>}`, strict JSON, a
number from 0 to MAX_COST_USD. While the run goes, a file that does not parse counts as 0 (it
may be half-written); once it has ended, a refused cost.json fails the run with the reason.
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from .adapters import AgentReport, one_line
from .boundary import Refused, bounded_cost, load_json
from .types import OutcomeStatus
from .workspace import WorkspacePaths, read_capped

_COST_FILE_CAP = 64 * 1024


def cost_file(paths: WorkspacePaths) -> Decimal | str:
    """cost_usd from the agent's cost.json (0 when there is none), or why it is refused."""
    read = read_capped(paths.cost_json, _COST_FILE_CAP)
    if read.kind == "missing":
        return Decimal(0)
    if read.kind == "too_big":
        return f"cost.json is {read.size} bytes; limit {_COST_FILE_CAP}"
    if read.kind == "not_regular":
        return "cost.json is not a regular file (symlinks are not followed)"
    try:
        doc = load_json(read.data, "cost.json", parse_float=Decimal, parse_int=Decimal)
        if not isinstance(doc, dict) or "cost_usd" not in doc:
            raise Refused('cost.json: cost_usd is missing (expected {"cost_usd": <number>})')
        value = doc["cost_usd"]
        if isinstance(value, bool) or not isinstance(value, int | Decimal):
            raise Refused("cost.json: cost_usd is not a number")
        return bounded_cost(Decimal(value), "cost.json: cost_usd")
    except Refused as exc:
        return one_line(str(exc))


def parse_cost(paths: WorkspacePaths) -> Decimal:
    """The running figure: cost_usd from cost.json; 0 if absent, unreadable or refused."""
    cost = cost_file(paths)
    return cost if isinstance(cost, Decimal) else Decimal(0)


def with_cost(report: AgentReport, paths: WorkspacePaths, running: Decimal) -> AgentReport:
    """The ended run's cost: the highest of what the report, the running figure and cost.json
    say. A refused cost.json fails the run permanently (one that already failed or stopped
    keeps its reason), except a retry whose cost.json is not JSON: the crash cut it short."""
    cost = cost_file(paths)
    if isinstance(cost, Decimal):
        return replace(report, cost_usd=max(report.cost_usd, running, cost))
    report = replace(report, cost_usd=max(report.cost_usd, running))
    if report.status in ("failed", "canceled", "abandoned"):
        return report
    if report.status == "retry" and cost.startswith("cost.json is not valid JSON"):
        return report
    return replace(report, status="failed", error=cost, output=None, outputs={}, memory={})


def apply_cap(
    report: AgentReport,
    cap: Decimal | None,
    label: str | None = None,
    status: OutcomeStatus = "failed",
) -> AgentReport:
    """A final cost above the run's limit fails the run (`status`: failed for its own cap,
    retry when the rest of a daily cap ran out); the cost is kept as reported."""
    if cap is None or report.cost_usd <= cap or report.status in ("canceled", "failed"):
        return report
    return replace(report, status=status, error=over_cap(cap, report.cost_usd, label))


def over_cap(cap: Decimal, cost: Decimal, label: str | None = None) -> str:
    """The one line saying a run spent more than it may: "<limit> exceeded: $<cost> reported"."""
    return f"{label or f'per-run budget ${cap}'} exceeded: ${cost} reported"
