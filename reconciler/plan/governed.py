"""Approvals observed: signed approval files verified, Telegram's merged; for plan/pipeline.py."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import datetime

from reconciler.governance.approvals import (
    accepted,
    judge_git_approvals,
    unchanged_since_seen,
)
from reconciler.governance.signatures import build_trust, last_signatures
from reconciler.plan.observed import Observed, observe
from reconciler.repo.source import MissionRepo
from specs.desired import Desired
from specs.fields import duration_seconds
from specs.models import MissionSpec
from specs.time_math import add_seconds
from state.records import ApprovalRow, NewEvent
from state.store import StateReader, StateWriter


def applied_mission(observed: Observed) -> MissionSpec | None:
    return MissionSpec.model_validate(observed.mission.spec) if observed.mission else None


def git_approvals(
    repo: MissionRepo,
    desired: Desired,
    observed: Observed,
    now: datetime,
    first_seen: Mapping[str, datetime],
    current: Mapping[str, tuple[str, datetime]],
) -> list[ApprovalRow]:
    """Judge every approval file of the desired commit against the applied approvers."""
    docs = desired.of_kind("Approval")
    if not docs and not desired.malformed_approvals:
        return []
    mission = applied_mission(observed)
    approvers = list(mission.approvers) if mission else []
    ttl = duration_seconds(mission.policy.approval_ttl) if mission else 0.0
    trust = build_trust(approvers, repo.mc_dir / "trust")
    paths = sorted({d.path for d in docs} | {p.path for p in desired.malformed_approvals})
    signatures = last_signatures(repo.root, desired.commit or "HEAD", paths, trust)
    targets = dict(observed.digests)
    targets.update(approvable_targets(desired))
    return judge_git_approvals(
        docs,
        desired.malformed_approvals,
        signatures,
        trust,
        frozenset(a.name for a in approvers),
        targets,
        add_seconds(now, -ttl),
        now,
        first_seen,
        current,
    )


def approvable_targets(desired: Desired) -> dict[str, str]:
    """Every target an approval may name, with its digest in `desired`: each resource, and
    each workflow step as Task/<run>.<step> (approved against its run's digest)."""
    out = {key: doc.digest for key, doc in desired.docs.items()}
    for run in desired.of_kind("WorkflowRun"):
        wf = desired.get("Workflow", run.spec["workflow"])
        for step in wf.spec["steps"] if wf else []:
            out[f"Task/{run.name}.{step['id']}"] = run.digest
    return out


def current_targets(
    recorded: Mapping[str, tuple[str, datetime]], desired: Desired, now: datetime
) -> dict[str, tuple[str, datetime]]:
    """Each approvable target -> (its digest in `desired`, since when it has had it): the
    recorded `since` while the digest is unchanged, else `now` (it appears with this apply)."""
    return {
        target: (digest, recorded[target][1] if recorded.get(target, ("",))[0] == digest else now)
        for target, digest in approvable_targets(desired).items()
    }


def observe_governed(
    reader: StateReader, repo: MissionRepo, desired: Desired, now: datetime
) -> tuple[Observed, list[ApprovalRow]]:
    """Observed state with every counted approval: verified git files plus Telegram decisions."""
    observed = observe(reader, desired)
    known = reader.approvals(channel="git")
    first_seen = {r.id: r.seen for r in known if r.seen is not None}
    recorded = reader.target_digests_since()
    current = current_targets(recorded, desired, now)
    rows = git_approvals(repo, desired, observed, now, first_seen, current)
    others = reader.approvals(status="accepted", channel="telegram")
    counted = unchanged_since_seen(accepted([*rows, *others]), current)
    return dataclasses.replace(observed, approvals=counted, current=current), rows


def record_git_approvals(
    writer: StateWriter, rows: list[ApprovalRow], actor: str, commit: str | None, now: datetime
) -> None:
    """Store the latest judgement of every approval file; an event for each new verdict."""
    before = {r.id: r for r in writer.approvals(channel="git")}
    current = {r.id: r for r in rows}
    changed = [
        r
        for r in rows
        if r.id not in before or before[r.id].status != r.status or before[r.id].reason != r.reason
    ]
    writer.record_approvals(changed, now)
    writer.forget_approvals([i for i in before if i not in current])
    writer.append_events(
        [
            NewEvent(
                actor,
                f"approval.{r.status}",
                r.target,
                {
                    "approver": r.approver,
                    "decision": r.decision,
                    "digest": r.digest,
                    "reason": r.reason,
                    "channel": r.channel,
                    "evidence": r.evidence,
                },
                commit,
            )
            for r in changed
        ],
        now,
    )
