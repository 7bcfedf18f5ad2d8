"""Pure: what a run reserves against the daily caps that apply to it, and what it may spend;
the scheduler (engine/scheduler.py) asks before each dispatch, engine/views.py sums what the
runs in flight hold.

A run in flight holds a reservation against every capped scope it runs in (its agent's daily
cap, the mission's): its per-run cap (the smaller of the task's and the agent's), else its
`estimated_usd`, else all that is left of the tightest cap. It starts only if, for every
capped scope, spent today + reserved + its reservation <= cap. Under a cap a run may spend what
it reserved: past it, the runtime stops it (cost.json) or fails it (reported at the end).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

# What bounds a run's spend: its per-run cap, its estimate, the rest of a daily cap, nothing.
LimitKind = Literal["per_run", "estimate", "daily", "none"]
BUDGET = "budget"  # the category a budget block's reason starts with


@dataclass(frozen=True, slots=True)
class RunBudget:
    """One run's money. `reserve`: held against every capped scope while it is in flight (None:
    no bound at all — no cap applied when it started — so it holds whatever a cap leaves).
    `limit`: it is stopped (cost.json) or failed (its final report) past this; None: never."""

    reserve: Decimal | None
    limit: Decimal | None
    kind: LimitKind
    scope: str = ""  # for kind "daily": whose cap it took the rest of ("agent w", "mission")


@dataclass(frozen=True, slots=True)
class Scope:
    """A daily cap and what counts against it today: `spent` (the ledger), `reserved` (runs in
    flight), `open_ended` (a run in flight has no bound, so nothing is left to reserve)."""

    name: str  # "agent w" | "mission"
    spent: Decimal
    reserved: Decimal
    cap: Decimal | None
    open_ended: bool = False

    @property
    def left(self) -> Decimal:
        """What a new run may still reserve (0 when a run in flight has no bound)."""
        if self.cap is None:
            raise ValueError(f"{self.name} has no daily cap")
        return Decimal(0) if self.open_ended else self.cap - self.spent - self.reserved

    def held(self, budget: RunBudget) -> Scope:
        """This scope once a run with `budget` is in flight too."""
        if budget.reserve is None:
            return Scope(self.name, self.spent, self.reserved, self.cap, True)
        return Scope(
            self.name, self.spent, self.reserved + budget.reserve, self.cap, self.open_ended
        )


def per_run(task_cap: Decimal | None, agent_cap: Decimal | None) -> Decimal | None:
    """The run's per-run cap: the smaller of the task's and the agent's (0 or unset: none)."""
    caps = [c for c in (task_cap, agent_cap) if c]
    return min(caps) if caps else None


def admit(
    per_run_cap: Decimal | None, estimate: Decimal | None, scopes: Sequence[Scope]
) -> RunBudget | str:
    """The run's budget if it may start now, else why not ("budget: …", for a BLOCKED task).

    Reservation: the per-run cap, else the estimate, else the least that any capped scope has
    left (so a capped scope admits one such run at a time). Admitted iff every capped scope
    still has something left and the reservation fits in what it has left.
    """
    fixed = per_run_cap if per_run_cap else estimate
    capped = [s for s in scopes if s.cap is not None]
    if not capped:
        kind: LimitKind = "per_run" if per_run_cap else "none"
        return RunBudget(fixed, per_run_cap or None, kind)
    for scope in capped:
        if scope.left <= 0 or (fixed is not None and fixed > scope.left):
            return refusal(scope, fixed)
    if fixed is not None:
        return RunBudget(fixed, fixed, "per_run" if per_run_cap else "estimate")
    tightest = min(capped, key=lambda s: (s.left, s.name))
    return RunBudget(tightest.left, tightest.left, "daily", tightest.name)


def refusal(scope: Scope, reserve: Decimal | None) -> str:
    """Why the scope cannot take a run reserving `reserve` (None: the rest of the cap)."""
    assert scope.cap is not None
    used = scope.spent + scope.reserved
    why = f"{BUDGET}: {scope.name} at ${used:.2f} of its ${scope.cap:.2f} daily cap"
    if scope.open_ended:
        return why + " (a run in flight has no per-run cap or estimate)"
    if scope.reserved:
        why += f" (${scope.reserved:.2f} reserved by runs in flight)"
    if reserve is not None and used < scope.cap:
        why += f"; a run reserves ${reserve:.2f}"
    return why


def overrun(budget: RunBudget | None, reported: Decimal) -> dict[str, str] | None:
    """The `budget.overrun` event data when a run reported more than it was allowed, else None:
    cap (its limit), reported, scope (which limit: per-run cap, estimate, a daily cap's rest)."""
    if budget is None or budget.limit is None or reported <= budget.limit:
        return None
    scope = {"per_run": "per-run cap", "estimate": "estimated_usd", "none": ""}.get(budget.kind)
    if budget.kind == "daily":
        scope = f"{budget.scope} daily cap"
    return {"cap_usd": str(budget.limit), "reported_usd": str(reported), "scope": scope or ""}
