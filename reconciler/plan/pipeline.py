"""Commit -> plan, written once; called by mc plan/apply/explain (commands/) and the serve loop.

Desired state of a commit -> observed with verified approvals -> planned; applying is one
more call on the result, so `mc apply`, `mc apply FILE` and serve apply the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from reconciler.plan.actions import Plan
from reconciler.plan.apply import ApplyResult, apply_plan
from reconciler.plan.build import build_plan
from reconciler.plan.governed import observe_governed
from reconciler.plan.observed import Observed
from reconciler.repo.source import MissionRepo
from specs.desired import Desired
from state.records import ApprovalRow
from state.store import State, StateReader


@dataclass(frozen=True)
class CommitPlan:
    """What planning a commit found: the plan and everything applying it needs."""

    desired: Desired
    observed: Observed
    plan: Plan
    git_approvals: tuple[ApprovalRow, ...]  # the commit's approval files, judged now

    @property
    def in_sync(self) -> bool:
        """The commit's desired state is the applied one (nothing left to change)."""
        return matches_applied(self.desired, self.observed.digests)

    def apply(self, state: State, now: datetime, actor: str) -> ApplyResult:
        """Apply every action the plan allows; the rest is recorded as pending."""
        return apply_plan(self.plan, self.desired, state, now, actor, self.git_approvals)


def plan_commit(
    reader: StateReader, repo: MissionRepo, desired: Desired, now: datetime
) -> CommitPlan:
    """Plan `desired` (a commit's, or the work tree's) against the state `reader` sees."""
    observed, approvals = observe_governed(reader, repo, desired, now)
    return CommitPlan(desired, observed, build_plan(desired, observed, now), tuple(approvals))


def matches_applied(desired: Desired, applied_digests: Mapping[str, str]) -> bool:
    """Every declared resource is applied with the same digest, and nothing else is."""
    if len(desired.docs) != len(applied_digests):
        return False
    return all(applied_digests.get(key) == doc.digest for key, doc in desired.docs.items())
