"""The observed-state snapshot the pure planner reads, built by plan/pipeline.py."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from reconciler.governance.approvals import GivenApproval
from specs.desired import Desired
from state.records import AppliedResource
from state.store import StateReader


@dataclass(frozen=True)
class Observed:
    """Applied digests of everything, and full records only where the plan needs a look.

    `resources` holds the applied Mission and every resource whose digest differs from the
    desired one (or that is no longer desired); unchanged resources appear only in `digests`.
    """

    serial: int
    digests: Mapping[str, str]
    resources: Mapping[str, AppliedResource]
    task_states: Mapping[str, str] = field(default_factory=dict)
    approvals: Mapping[str, tuple[GivenApproval, ...]] = field(default_factory=dict)
    # approvable target -> (its desired digest, since when): what apply records, so an
    # approval seen before content last appeared does not count (governance/approvals.py)
    current: Mapping[str, tuple[str, datetime]] = field(default_factory=dict)

    @property
    def mission(self) -> AppliedResource | None:
        return next((r for r in self.resources.values() if r.kind == "Mission"), None)


def observed_from(resources: Mapping[str, AppliedResource], **kw: Any) -> Observed:
    """An Observed holding full records of everything (tests and small states)."""
    digests = {k: r.digest for k, r in resources.items()}
    return Observed(kw.pop("serial", 0), digests, resources, **kw)


EMPTY = Observed(serial=0, digests={}, resources={})


def observe(reader: StateReader, desired: Desired) -> Observed:
    digests = reader.resource_digests()
    wanted = [k for k, d in digests.items() if k.startswith("Mission/") or _differs(k, d, desired)]
    resources = reader.resources_by_key(wanted)
    deleted = [k for k in digests if k.startswith("Task/") and k not in desired.docs]
    states = reader.task_states_of([k.split("/", 1)[1] for k in deleted])
    return Observed(reader.serial(), digests, resources, states)


def _differs(key: str, digest: str, desired: Desired) -> bool:
    doc = desired.docs.get(key)
    return doc is None or doc.digest != digest
