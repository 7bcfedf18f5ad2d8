"""The closed set of plan actions; planner, renderer, JSON and applier all match on this union."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from reconciler.governance.policy import RiskDecision, Verb
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
