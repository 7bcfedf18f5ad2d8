"""Commit -> plan, written once; called by mc plan/apply/explain (commands/) and the serve loop.

Desired state of a commit -> observed with verified approvals -> planned; applying is one
more call on the result, so `mc apply`, `mc apply FILE` and serve apply the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from reconciler.governance.trust_chain import TrustBasis, basis_of, basis_to_json
from reconciler.governance.trust_history import read_chain
from reconciler.plan.actions import Plan
from reconciler.plan.apply import ApplyResult, apply_plan
from reconciler.plan.build import build_plan
from reconciler.plan.governed import observe_governed
from reconciler.plan.observed import Observed
from reconciler.repo.source import MissionRepo, RepoError
from specs.desired import Desired
from specs.errors import MCError
from state.records import ApprovalRow, NewEvent
from state.store import State, StateReader


class UntrustedHead(MCError):
    """No Mission is applied and HEAD's approver set does not follow from git history."""

    def __init__(self, basis: TrustBasis) -> None:
        super().__init__(
            "refused: nothing applied. The state holds no applied mission, so mc derived the"
            f" approver set from mission.yaml's git history: {basis.reason}"
        )
        self.basis = basis

    def lines(self) -> list[str]:
        return [str(self), f"fix: {self.basis.fix}"] if self.basis.fix else [str(self)]


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
        """Apply every action the plan allows; the rest is recorded as pending. Raises
        UntrustedHead (and writes nothing) when git history does not back HEAD's approvers."""
        trust = self.plan.trust
        if trust is not None and trust.refused:
            raise UntrustedHead(trust)
        result = apply_plan(
            self.plan, self.desired, state, now, actor, self.git_approvals, self.observed.current
        )
        if trust is not None:  # what this first apply trusted, and on what grounds
            kind = "trust.anew" if trust.verdict == "anew" else "trust.first_use"
            data = basis_to_json(trust) or {}
            subject = self.desired.mission.key
            state.writer.append_events(
                [NewEvent(actor, kind, subject, data, self.plan.commit)], now
            )
        return result


def plan_commit(
    reader: StateReader,
    repo: MissionRepo,
    desired: Desired,
    now: datetime,
    trust_anew: bool = False,
) -> CommitPlan:
    """Plan `desired` (a commit's, or the work tree's) against the state `reader` sees.

    With no Mission applied (a new or a lost state), the approver set HEAD may declare is
    derived from mission.yaml's history; `trust_anew` trusts HEAD's instead, as the plan says.
    """
    observed, approvals = observe_governed(reader, repo, desired, now)
    trust = trust_basis(repo, desired, observed, now, trust_anew)
    plan = build_plan(desired, observed, now, trust)
    return CommitPlan(desired, observed, plan, tuple(approvals))


def trust_basis(
    repo: MissionRepo, desired: Desired, observed: Observed, now: datetime, anew: bool
) -> TrustBasis | None:
    """None while a Mission is applied (the applied mission judges); else the trust chain's
    verdict on `desired`'s approvers."""
    if observed.mission is not None:
        return None
    if desired.commit is not None:
        return basis_of(read_chain(repo, desired.commit, now), anew)
    try:
        head: str | None = repo.resolve("HEAD")
    except RepoError:
        head = None  # no commit yet: the work tree's mission is the whole history
    return basis_of(read_chain(repo, head, now, worktree=desired.mission), anew)


def matches_applied(desired: Desired, applied_digests: Mapping[str, str]) -> bool:
    """Every declared resource is applied with the same digest, and nothing else is."""
    if len(desired.docs) != len(applied_digests):
        return False
    return all(applied_digests.get(key) == doc.digest for key, doc in desired.docs.items())
