"""Is each resource in sync with HEAD, and if not, how does it differ? For the dashboard.

Cheap by construction: every plan of HEAD (by `mc serve` on each commit, or `mc apply`)
applies what it may and records everything else it holds back in the `pending` table
(apply_plan -> replace_pending), so "out of sync" is "named in that table" — one small
query, no re-planning per page. The field diff of one resource is read on its own page
only: the spec HEAD declares, parsed as the plan parsed it (`MissionRepo.desired` of the
planned commit, warm in the parse cache and kept for the next page), against the applied
spec, with the same `diff_specs` the plan uses.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reconciler.plan.diff import diff_specs
from reconciler.repo.source import MissionRepo
from specs.desired import Desired
from specs.errors import MCError
from state.records import PendingAction

if TYPE_CHECKING:
    from api.views import Readers

MAX_DIFF_LINES = 60


@dataclass(frozen=True, slots=True)
class FieldDiff:
    path: str  # spec.command, metadata.labels.team
    applied: Any  # None: not set in the applied spec
    head: Any  # None: not set at HEAD


@dataclass(frozen=True, slots=True)
class SyncState:
    """A resource against HEAD's last plan: in sync, or held back and why."""

    key: str  # Kind/name
    in_sync: bool
    action: str | None = None  # create | update | delete | replace: what HEAD asks for
    risk: str | None = None
    why: str | None = None  # why it is not applied yet (the plan's reason)
    commit: str | None = None  # the commit that plan was made of
    diff: tuple[FieldDiff, ...] = ()  # on a resource's own page, when out of sync
    diff_note: str | None = None  # when the diff could not be read


@dataclass(frozen=True, slots=True)
class SyncSummary:
    """The overview's line: how many applied resources match HEAD, and the ones that do not."""

    commit: str | None  # the commit HEAD's last plan was made of (the applied one if in sync)
    resources: int
    out_of_sync: list[SyncState]


def held(r: Readers) -> dict[str, PendingAction]:
    """Kind/name -> the plan action HEAD's last plan holds back for it."""
    return {p.key: p for p in r.state.pending()}


def sync_state(key: str, pending: dict[str, PendingAction]) -> SyncState:
    p = pending.get(key)
    if p is None:
        return SyncState(key, True)
    return SyncState(key, False, p.action, p.risk, p.reason, p.commit)


def summary(r: Readers) -> SyncSummary:
    pending = held(r)
    commit = next((p.commit for p in pending.values() if p.commit), None)
    return SyncSummary(
        commit or r.state.applied_commit(),
        r.dash.resource_count(),
        [sync_state(k, pending) for k in sorted(pending)],
    )


def with_diff(r: Readers, repo_root: Path, state: SyncState) -> SyncState:
    """`state` with the field diff between the applied spec and HEAD's (out of sync only)."""
    if state.in_sync:
        return state
    kind, name = state.key.split("/", 1)
    applied = r.state.resource(kind, name)
    old = applied.spec if applied is not None else {}
    if state.action == "delete":
        return _replace(state, (), "removed from git at HEAD; applied until approved")
    if state.commit is None:
        return _replace(state, (), "planned from the work tree; `mc plan` shows the change")
    try:
        doc = _desired(repo_root, state.commit).get(kind, name)
    except MCError as exc:  # the repo moved or is unreadable: say so, keep the page
        return _replace(state, (), f"the diff could not be read from git: {exc}")
    if doc is None:
        return _replace(state, (), "HEAD's spec could not be found in git (see `mc plan`)")
    diff = tuple(FieldDiff(c.path, c.old, c.new) for c in diff_specs(old, doc.spec))
    note = None
    if len(diff) > MAX_DIFF_LINES:
        diff, note = diff[:MAX_DIFF_LINES], f"{len(diff) - MAX_DIFF_LINES} more fields differ"
    return _replace(state, diff, note)


def _replace(state: SyncState, diff: tuple[FieldDiff, ...], note: str | None) -> SyncState:
    return SyncState(
        state.key, state.in_sync, state.action, state.risk, state.why, state.commit, diff, note
    )


@functools.lru_cache(maxsize=2)
def _desired(root: Path, commit: str) -> Desired:
    """A commit's desired state never changes: parse it once per dashboard process."""
    return MissionRepo(root).desired(commit, report_dirty=False)
