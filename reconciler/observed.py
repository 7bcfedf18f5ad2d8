"""A snapshot of the observed state that the pure planner reads (built from a StateReader)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from state.records import AppliedResource
from state.store import StateReader


@dataclass(frozen=True, slots=True)
class GivenApproval:
    """A verified decision on one target digest, from a signed commit or Telegram."""

    target: str
    digest: str
    approver: str
    decision: str  # approve | deny
    channel: str  # git | telegram
    at: datetime


@dataclass(frozen=True)
class Observed:
    serial: int
    resources: Mapping[str, AppliedResource]
    task_states: Mapping[str, str] = field(default_factory=dict)
    approvals: Mapping[str, tuple[GivenApproval, ...]] = field(default_factory=dict)

    @property
    def mission(self) -> AppliedResource | None:
        return next((r for r in self.resources.values() if r.kind == "Mission"), None)


EMPTY = Observed(serial=0, resources={})


def observe(reader: StateReader) -> Observed:
    return Observed(
        serial=reader.serial(), resources=reader.resources(), task_states=reader.task_states()
    )
