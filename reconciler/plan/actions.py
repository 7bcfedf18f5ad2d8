"""The closed union of plan actions and the Plan; matched by planner, codec, renderer, applier."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from reconciler.governance.confinement import Unconfined
from reconciler.governance.policy import RiskDecision, Verb
from reconciler.governance.trust_chain import TrustBasis
from reconciler.plan.diff import FieldChange

Status = Literal["apply", "needs_approval", "denied", "unapprovable"]


@dataclass(frozen=True, slots=True)
class CreateResource:
    kind: str
    name: str
    digest: str
    path: str


@dataclass(frozen=True, slots=True)
class UpdateResource:
    kind: str
    name: str
    digest: str
    old_digest: str
    path: str
    changes: tuple[FieldChange, ...]
    replace: bool = False  # a started workflow run with new inputs: canceled and run anew


@dataclass(frozen=True, slots=True)
class DeleteResource:
    kind: str
    name: str
    old_digest: str
    running: bool = False  # a task with work in flight: deleting it stops that work


Change = CreateResource | UpdateResource | DeleteResource


def verb_of(change: Change) -> Verb:
    match change:
        case CreateResource():
            return "create"
        case UpdateResource():
            return "update"
        case DeleteResource():
            return "delete"


def key_of(change: Change) -> str:
    return f"{change.kind}/{change.name}"


@dataclass(frozen=True, slots=True)
class PlannedAction:
    change: Change
    decision: RiskDecision
    status: Status
    approved_by: tuple[str, ...] = ()
    note: str | None = None

    @property
    def key(self) -> str:
        return key_of(self.change)

    @property
    def target_digest(self) -> str | None:
        """What an approval must name: the new content, or the content being deleted."""
        match self.change:
            case CreateResource() | UpdateResource():
                return self.change.digest
            case DeleteResource():
                return self.change.old_digest


@dataclass(frozen=True)
class Plan:
    """A reviewed plan: applying it does exactly this, or is refused as stale."""

    commit: str | None
    serial: int
    actions: tuple[PlannedAction, ...]
    trust_on_first_use: bool
    digest: str
    unconfined: tuple[Unconfined, ...] = ()  # agents this plan creates or changes, unsandboxed
    trust: TrustBasis | None = None  # no Mission applied: what it trusts from git history

    @property
    def refused(self) -> bool:
        """HEAD's approver set does not follow from history: nothing of it may be applied."""
        return self.trust is not None and self.trust.refused

    @property
    def changes(self) -> int:
        return len(self.actions)

    def counts(self) -> dict[str, int]:
        counts = {"create": 0, "update": 0, "delete": 0, "needs_approval": 0, "blocked": 0}
        for action in self.actions:
            counts[verb_of(action.change)] += 1
            if action.status == "needs_approval":
                counts["needs_approval"] += 1
            elif action.status in ("denied", "unapprovable"):
                counts["blocked"] += 1
        return counts
