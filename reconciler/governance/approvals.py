"""Judge signed approvals (pure, given git's verdicts) and count them; for plan/ and engine/.

An approval names a target and the digest of the content it approves: a changed spec voids it.
HIGH needs one approval, RED two distinct approvers; one deny is final until the spec changes;
approvals expire after the mission's `approval_ttl`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from reconciler.governance.signatures import Signature, TrustStore
from specs.errors import SpecProblem
from specs.loader import ParsedDoc
from state.records import ApprovalRow


@dataclass(frozen=True, slots=True)
class GivenApproval:
    """A verified decision on one target digest, from a signed commit or Telegram."""

    target: str
    digest: str
    approver: str
    decision: str  # approve | deny
    channel: str  # git | telegram
    at: datetime


@dataclass(frozen=True, slots=True)
class Tally:
    approved_by: frozenset[str]
    denied_by: frozenset[str]

    def satisfied(self, needed: int) -> bool:
        return not self.denied_by and len(self.approved_by) >= needed


def tally(
    approvals: Iterable[GivenApproval],
    target: str,
    digest: str | None,
    approvers: frozenset[str],
    oldest_valid: datetime,
    since: datetime | None = None,
) -> Tally:
    """Distinct approvers for exactly this content, still declared, not expired."""
    approve: set[str] = set()
    deny: set[str] = set()
    for a in approvals:
        if a.target != target or a.digest != digest or a.approver not in approvers:
            continue
        if a.at < oldest_valid or (since is not None and a.at < since):
            continue
        (deny if a.decision == "deny" else approve).add(a.approver)
    return Tally(frozenset(approve), frozenset(deny))


def judge_git_approvals(
    docs: Iterable[ParsedDoc],
    malformed: Iterable[SpecProblem],
    signatures: Mapping[str, Signature],
    trust: TrustStore,
    approvers: frozenset[str],
    target_digests: Mapping[str, str],
    oldest_valid: datetime,
) -> list[ApprovalRow]:
    """Every approval file of the commit, accepted or rejected with the reason and evidence."""
    rows = [_malformed_row(p, signatures.get(p.path), oldest_valid) for p in malformed]
    seen: set[tuple[str, str, str]] = set()
    for doc in sorted(docs, key=lambda d: _precedence(d, signatures.get(d.path))):
        sig = signatures.get(doc.path)
        target, digest = doc.spec["target"], doc.spec["digest"]
        approver = trust.approver_for(sig, approvers) if sig else None
        reason = _rejection(sig, approver, target, digest, target_digests, oldest_valid)
        if reason is None and approver is not None and (target, digest, approver) in seen:
            reason = f"{approver} already decided on this digest (a second approval counts once)"
        if reason is None and approver is not None:
            seen.add((target, digest, approver))
        rows.append(_judged_row(doc, sig, approver, reason, oldest_valid))
    return rows


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
    doc: ParsedDoc,
    sig: Signature | None,
    approver: str | None,
    reason: str | None,
    oldest_valid: datetime,
) -> ApprovalRow:
    """One approval file's verdict (rejected when there is a reason) with git's evidence."""
    evidence = {"path": doc.path, "name": doc.name}
    if sig is not None:
        evidence.update(commit=sig.commit, signature=sig.status, key=sig.key, signer=sig.signer)
    return ApprovalRow(
        f"git:{doc.path}#{doc.index}@{sig.commit if sig else '-'}",
        doc.spec["target"],
        doc.spec["digest"],
        approver,
        doc.spec["decision"],
        "git",
        "rejected" if reason else "accepted",
        reason,
        evidence,
        sig.time if sig else oldest_valid,
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
    oldest_valid: datetime,
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
    current = target_digests.get(target)
    if current is None:
        return f"unknown target {target}"
    if current != digest:
        return f"approves digest {digest[:19]}…, but {target} is now {current[:19]}…"
    if sig.time < oldest_valid:
        return f"expired: signed {sig.time.isoformat(timespec='seconds')}, older than approval_ttl"
    return None


def accepted(rows: Iterable[ApprovalRow]) -> dict[str, tuple[GivenApproval, ...]]:
    """Accepted decisions by target, in the shape the planner and scheduler count."""
    out: dict[str, list[GivenApproval]] = {}
    for r in rows:
        if r.status == "accepted" and r.approver is not None:
            out.setdefault(r.target, []).append(
                GivenApproval(r.target, r.digest, r.approver, r.decision, r.channel, r.at)
            )
    return {k: tuple(v) for k, v in out.items()}
