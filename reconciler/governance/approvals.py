"""Judge signed approvals (pure, given git's verdicts) and count them; for plan/ and engine/.

An approval names a target and the digest of the content it approves: a changed spec voids it.
HIGH needs one approval, RED two distinct approvers; one deny is final until the spec changes;
approvals expire after the mission's `approval_ttl`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from reconciler.governance.signatures import Signature, TrustStore
from specs.errors import SpecProblem
from specs.loader import ParsedDoc
from state.records import ApprovalRow

# Clocks disagree a little; more than this ahead of mc's is a date the committer chose.
FUTURE_SKEW = timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class GivenApproval:
    """A verified decision on one target digest, from a signed commit or Telegram."""

    target: str
    digest: str
    approver: str
    decision: str  # approve | deny | request_changes
    channel: str  # git | telegram
    at: datetime  # when it starts to count: signed, but never later than first seen
    reason: str = ""  # the approver's words (the feedback of a request_changes)
    seen: datetime | None = None  # when mc first saw it (None: the same as `at`)

    @property
    def first_seen(self) -> datetime:
        return self.seen or self.at


@dataclass(frozen=True, slots=True)
class Tally:
    approved_by: frozenset[str]
    denied_by: frozenset[str]
    changes: tuple[GivenApproval, ...] = ()  # request_changes decisions, oldest first

    def satisfied(self, needed: int) -> bool:
        """Enough distinct approvals, and nobody denied or asked for changes."""
        return not self.denied_by and not self.changes and len(self.approved_by) >= needed


def tally(
    approvals: Iterable[GivenApproval],
    target: str,
    digest: str | None,
    approvers: frozenset[str],
    oldest_valid: datetime,
    since: datetime | None = None,
) -> Tally:
    """Distinct approvers for exactly this content, still declared, not expired, and (with
    `since`: the task entered REVIEW, or the target last changed) first seen after `since`."""
    approve: set[str] = set()
    deny: set[str] = set()
    changes: list[GivenApproval] = []
    for a in approvals:
        if a.target != target or a.digest != digest or a.approver not in approvers:
            continue
        if a.at < oldest_valid or (since is not None and a.first_seen < since):
            continue
        if a.decision == "request_changes":
            changes.append(a)
        else:
            (deny if a.decision == "deny" else approve).add(a.approver)
    changes.sort(key=lambda a: a.at)
    return Tally(frozenset(approve), frozenset(deny), tuple(changes))


def judge_git_approvals(
    docs: Iterable[ParsedDoc],
    malformed: Iterable[SpecProblem],
    signatures: Mapping[str, Signature],
    trust: TrustStore,
    approvers: frozenset[str],
    target_digests: Mapping[str, str],
    oldest_valid: datetime,
    now: datetime,
    first_seen: Mapping[str, datetime],
    current: Mapping[str, tuple[str, datetime]],
) -> list[ApprovalRow]:
    """Every approval file of the commit, accepted or rejected with the reason and evidence.

    Time comes from mc, not from the committer: an approval counts from when it was signed
    but never from later than mc first saw it (`first_seen`, by row id; `now` when new), so a
    commit dated in the future cannot outlive approval_ttl — and it is refused outright.
    An approval is of content as it was when approved: first seen before its target's
    current content (re)appeared (`current`: target -> (digest, since)), it is rejected.
    """
    rows = [_malformed_row(p, signatures.get(p.path), oldest_valid) for p in malformed]
    decided: set[tuple[str, str, str, str]] = set()
    for doc in sorted(docs, key=lambda d: _precedence(d, signatures.get(d.path))):
        sig = signatures.get(doc.path)
        target, digest = doc.spec["target"], doc.spec["digest"]
        approver = trust.approver_for(sig, approvers) if sig else None
        row_id = f"git:{doc.path}#{doc.index}@{sig.commit if sig else '-'}"
        seen = first_seen.get(row_id, now)
        start = min(sig.time, seen) if sig else oldest_valid
        since = current.get(target, (digest, seen))[1]
        when = Timing(start, now, oldest_valid, seen, since)
        reason = _rejection(sig, approver, target, digest, target_digests, when)
        # one of each decision per approver and content: a deny stays final where it is
        # (tally), but an approve after it is kept for a later review round to count
        key = (target, digest, approver or "", doc.spec["decision"])
        if reason is None and approver is not None and key in decided:
            reason = (
                f"{approver} already decided on this digest ({doc.spec['decision']};"
                " a second one counts once)"
            )
        if reason is None and approver is not None:
            decided.add(key)
        rows.append(_judged_row(row_id, doc, sig, approver, reason, start, seen))
    return rows


@dataclass(frozen=True, slots=True)
class Timing:
    """When an approval starts to count, mc's now, the oldest start still valid, when mc
    first saw it, and since when its target has had its current content."""

    start: datetime
    now: datetime
    oldest_valid: datetime
    seen: datetime
    content_since: datetime


def _malformed_row(
    problem: SpecProblem, sig: Signature | None, oldest_valid: datetime
) -> ApprovalRow:
    """A file that does not parse as an approval: rejected, with the problem as the reason."""
    evidence = {"path": problem.path, "commit": sig.commit if sig else None}
    return ApprovalRow(
        f"git:{problem.path}@{sig.commit if sig else '-'}",
        "?",
        "-",
        None,
        "approve",
        "git",
        "rejected",
        f"malformed approval file: {problem}",
        evidence,
        sig.time if sig else oldest_valid,
    )


def _judged_row(
    row_id: str,
    doc: ParsedDoc,
    sig: Signature | None,
    approver: str | None,
    reason: str | None,
    start: datetime,
    seen: datetime,
) -> ApprovalRow:
    """One approval file's verdict (rejected when there is a reason) with git's evidence."""
    evidence = {"path": doc.path, "name": doc.name, "comment": doc.spec.get("reason", "")}
    if sig is not None:
        evidence.update(commit=sig.commit, signature=sig.status, key=sig.key, signer=sig.signer)
    return ApprovalRow(
        row_id,
        doc.spec["target"],
        doc.spec["digest"],
        approver,
        doc.spec["decision"],
        "git",
        "rejected" if reason else "accepted",
        reason,
        evidence,
        start,
        seen,
    )


def _precedence(doc: ParsedDoc, sig: Signature | None) -> tuple[bool, float, str, int]:
    """Which of one approver's decisions on a digest counts: a deny (final until the content
    changes), else the newest (a review approval must be newer than the result it approves)."""
    newest_first = -sig.time.timestamp() if sig else 0.0
    return (doc.spec["decision"] != "deny", newest_first, doc.path, doc.index)


def _rejection(
    sig: Signature | None,
    approver: str | None,
    target: str,
    digest: str,
    target_digests: Mapping[str, str],
    when: Timing,
) -> str | None:
    if sig is None:
        return "no commit in this history touches the file"
    if sig.status == "N":
        return f"commit {sig.commit[:12]} is not signed"
    if approver is None:
        if sig.status in ("B", "R", "X", "Y"):  # E: no key to check with = undeclared
            return f"commit {sig.commit[:12]} has a bad or unverifiable signature ({sig.status})"
        return (
            f"commit {sig.commit[:12]} is signed by a key no applied approver declares ({sig.key})"
        )
    if sig.time > when.now + FUTURE_SKEW:
        return (
            f"commit {sig.commit[:12]} is dated in the future"
            f" ({sig.time.isoformat(timespec='seconds')}); an approval counts from when it"
            " was made, so sign it again with a correct clock"
        )
    current = target_digests.get(target)
    if current is None:
        return f"unknown target {target}"
    if current != digest:
        return f"approves digest {digest[:19]}…, but {target} is now {current[:19]}…"
    if when.seen < when.content_since:
        return (
            f"{target} changed after this approval was first seen and now has the approved"
            " content again: an approval is of content as it was then; approve it again"
        )
    if when.start < when.oldest_valid:
        return (
            f"expired: counts from {when.start.isoformat(timespec='seconds')},"
            " older than approval_ttl"
        )
    return None


def accepted(rows: Iterable[ApprovalRow]) -> dict[str, tuple[GivenApproval, ...]]:
    """Accepted decisions by target, in the shape the planner and scheduler count."""
    out: dict[str, list[GivenApproval]] = {}
    for r in rows:
        if r.status == "accepted" and r.approver is not None:
            out.setdefault(r.target, []).append(
                GivenApproval(
                    r.target, r.digest, r.approver, r.decision, r.channel, r.at, _comment(r), r.seen
                )
            )
    return {k: tuple(v) for k, v in out.items()}


def _comment(row: ApprovalRow) -> str:
    """The approver's own words (a git file's `reason:`, a Telegram comment); '' when none."""
    found = row.evidence.get("comment")
    return found if isinstance(found, str) else ""


def unchanged_since_seen(
    approvals: Mapping[str, tuple[GivenApproval, ...]],
    current: Mapping[str, tuple[str, datetime]],
) -> dict[str, tuple[GivenApproval, ...]]:
    """Drop approvals of a target's current content first seen before that content last
    appeared: content approved, changed, and restored byte for byte needs a new approval.
    `current` maps a target to (its current digest, since when it has had it)."""
    return {
        target: tuple(a for a in given if not _seen_before_current(a, current.get(target)))
        for target, given in approvals.items()
    }


def _seen_before_current(a: GivenApproval, current: tuple[str, datetime] | None) -> bool:
    return current is not None and a.digest == current[0] and a.first_seen < current[1]
