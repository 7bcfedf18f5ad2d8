"""Which approver set is in force, derived from mission.yaml's git history (pure); for
plan/pipeline.py when the state is lost, and `mc trust`.

The first approver set in the first-parent history of the planned commit is trusted on first
use. Every later commit that changes the set counts only when the set in force approved it the
way any change is approved: approval files naming `Mission/<name>` and the digest of the new
mission content, in commits signed by approvers of the set in force, as many distinct ones as
the policy needs (RED by default: two). The stricter of the policy in force (the content that
was trusted) and the proposed one decides, so a commit cannot lower its own bar. A change that
does not count leaves the set in force as it was; a later commit restoring that set follows
again. Approval age does not matter here: the question is whether the set in force agreed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import Any, Literal

from reconciler.governance.policy import RiskDecision, Subject, Verb, stricter_classify
from specs.models import MissionSpec

LinkVerdict = Literal["first_use", "followed", "broke", "restored"]
BasisVerdict = Literal["chain", "refused", "anew"]
# (approver set key, approval commits) -> commit -> the approver of that set whose key made
# the commit's good signature, as git verified it against that set's keys only
Signers = Callable[[str, frozenset[str]], Mapping[str, str]]
# (commit of the content in force, approval commits) -> those of the approval commits that are
# in that commit's history: written before the set in force was adopted, they approved an
# earlier proposal and cannot approve leaving it (a removed approver restored byte for byte)
Earlier = Callable[[str, frozenset[str]], frozenset[str]]


def _none_earlier(anchor: str, commits: frozenset[str]) -> frozenset[str]:
    return frozenset()


@dataclass(frozen=True)
class MissionVersion:
    """mission.yaml's Mission as one commit of the first-parent history has it."""

    commit: str | None  # None: the work tree (an uncommitted preview)
    time: datetime  # committer time, naive UTC
    name: str
    digest: str
    spec: dict[str, Any]
    labels: dict[str, str]

    @cached_property
    def mission(self) -> MissionSpec:
        return MissionSpec.model_validate(self.spec)

    @cached_property
    def approvers(self) -> tuple[str, ...]:
        return tuple(sorted(str(a["name"]) for a in self.spec.get("approvers", [])))

    @cached_property
    def set_key(self) -> str:
        """Read from the validated spec as it is (validating 200 versions again costs ~0.1 s)."""
        return approver_set_key(self.spec.get("approvers", []))


@dataclass(frozen=True, slots=True)
class ChainApproval:
    """One approval document of a Mission, as the commit that wrote that version of it had it."""

    commit: str
    path: str
    target: str  # Mission/<name>
    digest: str
    decision: str  # approve | deny


@dataclass(frozen=True, slots=True)
class Link:
    """One commit that set the approver set, and whether that follows from the set before."""

    commit: str | None
    time: datetime
    approvers: tuple[str, ...]  # who it set
    verdict: LinkVerdict
    previous: tuple[str, ...]  # the set in force before it
    approved_by: tuple[str, ...] = ()
    needed: int = 0
    reason: str = ""


@dataclass(frozen=True)
class TrustChain:
    """Every change of the approver set in history, oldest first, and where it leaves HEAD."""

    links: tuple[Link, ...]
    trusted: tuple[str, ...]  # the set in force after the last commit
    head: tuple[str, ...]  # the set the planned commit declares
    head_name: str
    head_digest: str
    root: str | None  # the commit whose set was trusted on first use
    truncated: bool = False  # history longer than mc reads: nothing can be derived
    # a commit in HEAD's history that changed mission.yaml but does not descend from `root`:
    # the first-parent line starts in a history of its own (an orphan branch merged with the
    # real one as its second parent), so which approver set came first is not known
    foreign: str | None = None

    @property
    def head_follows(self) -> bool:
        if self.truncated or self.foreign is not None:
            return False
        return not self.links or self.links[-1].verdict != "broke"

    @property
    def breaking(self) -> Link | None:
        """The commit that set HEAD's approver set without the approval it needed."""
        if self.head_follows or self.truncated or self.foreign or not self.links:
            return None
        return self.links[-1]


@dataclass(frozen=True, slots=True)
class TrustBasis:
    """What a plan against a state without a Mission trusts, and why (carried by the plan)."""

    verdict: BasisVerdict  # chain: HEAD follows; refused: it does not; anew: --trust-anew
    trusted: tuple[str, ...]  # HEAD's approvers when trusted, else the set in force
    root: str | None
    reason: str
    fix: str | None = None

    @property
    def refused(self) -> bool:
        return self.verdict == "refused"


def approver_set_key(approvers: Iterable[Mapping[str, Any]]) -> str:
    """A digest of who may approve: names, SSH keys (type and key), GPG keys, Telegram ids
    (`approvers` as a validated Mission spec holds them)."""
    canonical = sorted(
        (
            str(a["name"]),
            sorted(" ".join(str(k).split()[:2]) for k in a.get("ssh_keys", [])),
            sorted(
                "\n".join(line.strip() for line in str(k).strip().splitlines())
                for k in a.get("gpg_keys", [])
            ),
            sorted(int(i) for i in a.get("telegram_ids", [])),
        )
        for a in approvers
    )
    return hashlib.sha256(json.dumps(canonical).encode()).hexdigest()


def derive_chain(
    versions: Sequence[MissionVersion],
    approvals: Sequence[ChainApproval],
    signers: Signers,
    truncated: bool = False,
    earlier: Earlier = _none_earlier,
) -> TrustChain:
    """Walk the versions (oldest first; the last is the planned one) and judge each change of
    the approver set against the set in force. `signers` answers who of a set signed which
    approval commits (asked only for the approvals of a change being judged); `earlier`, which
    of them the content in force already had in its history (those do not count)."""
    assert versions, "the planned commit's mission is the last version"
    links: list[Link] = []
    anchor: MissionVersion | None = None  # the trusted content: its set and rules are in force
    root: str | None = None
    for span in _spans(versions):
        v = span[0]
        before = anchor.approvers if anchor else ()
        if anchor is None or not anchor.approvers:
            if v.approvers:  # no approvers in force: the first set is trusted on first use
                links.append(Link(v.commit, v.time, v.approvers, "first_use", before))
                anchor, root = v, v.commit
            continue
        if v.set_key == anchor.set_key:
            links.append(Link(v.commit, v.time, v.approvers, "restored", before))
            continue
        fresh, stale = _written_since(anchor, span, approvals, earlier)
        link, approved = _judge(anchor, span, fresh, signers)
        if stale and link.verdict == "broke" and anchor.commit:
            why = f"; approvals of it older than commit {anchor.commit[:12]} (the set in force)"
            link = dataclasses.replace(
                link, reason=link.reason + why + " approved an earlier change"
            )
        links.append(link)
        anchor = approved or anchor
    head = versions[-1]
    trusted = anchor.approvers if anchor else ()
    return TrustChain(
        tuple(links), trusted, head.approvers, head.name, head.digest, root, truncated
    )


def basis_of(chain: TrustChain, anew: bool) -> TrustBasis:
    """The plan's trust basis: HEAD follows, is refused (why and what fixes it), or `anew`."""
    head = ", ".join(chain.head) or "no approvers"
    if anew:
        history = (
            "history backs them too"
            if chain.head_follows
            else f"history alone would refuse it: {refusal(chain)}"
        )
        return TrustBasis(
            "anew",
            chain.head,
            None,
            f"--trust-anew: trusting the approvers HEAD declares ({head}) as they are ({history})",
        )
    if chain.head_follows:
        return TrustBasis("chain", chain.head, chain.root, _follows_reason(chain))
    return TrustBasis("refused", chain.trusted, chain.root, refusal(chain), fix(chain))


def refusal(chain: TrustChain) -> str:
    """Why HEAD's approver set does not follow from history (one line)."""
    if chain.truncated:
        return "mission.yaml has more versions in history than mc reads; the chain is unknown"
    if chain.foreign is not None:
        root = chain.root[:12] if chain.root else "the work tree"
        return (
            f"commit {chain.foreign[:12]} changed mission.yaml in a history that does not"
            f" descend from commit {root}, where the first-parent history starts (a history"
            " merged in beside it): which approver set came first is unknown"
        )
    link = chain.breaking
    assert link is not None
    where = f"commit {link.commit[:12]}" if link.commit else "the work tree"
    return (
        f"{where} set the approvers to ({', '.join(link.approvers) or 'none'}) without the"
        f" approval of the set before it ({', '.join(link.previous)}): {link.reason}"
    )


def fix(chain: TrustChain) -> str:
    """What makes HEAD trusted again."""
    anew = "or, if you trust HEAD's approvers, apply with `--trust-anew`"
    link = chain.breaking
    if link is None:
        return "if you trust HEAD's approvers, apply with `--trust-anew`"
    who = ", ".join(link.previous)
    return (
        f"have {max(link.needed, 1)} of ({who}) approve Mission/{chain.head_name} at"
        f" {chain.head_digest} (`mc approve Mission/{chain.head_name}`, signed), or commit"
        f" mission.yaml declaring ({who}) again, {anew}"
    )


def _follows_reason(chain: TrustChain) -> str:
    if not chain.links:
        return "no approvers declared anywhere in mission.yaml's history"
    followed = [lk for lk in chain.links if lk.verdict == "followed"]
    root = f"commit {chain.root[:12]}" if chain.root else "the work tree"
    first = next(lk for lk in chain.links if lk.verdict == "first_use")
    text = f"approvers ({', '.join(first.approvers)}) trusted on first use from {root}"
    if followed:
        text += f"; {len(followed)} later change(s), each approved by the set before it"
    return text


def _written_since(
    anchor: MissionVersion,
    span: Sequence[MissionVersion],
    approvals: Sequence[ChainApproval],
    earlier: Earlier,
) -> tuple[list[ChainApproval], bool]:
    """The approvals of the span's content that the content in force did not already have in
    its history, and whether any were left out: one written before the set in force was
    adopted approved an earlier change (dave added, then removed with approval: his return
    needs approving again)."""
    targets = {(f"Mission/{x.name}", x.digest) for x in span}
    mine = [a for a in approvals if (a.target, a.digest) in targets]
    if anchor.commit is None or not mine:
        return mine, False
    old = earlier(anchor.commit, frozenset(a.commit for a in mine))
    return [a for a in mine if a.commit not in old], bool(old)


def _spans(versions: Sequence[MissionVersion]) -> list[list[MissionVersion]]:
    """Runs of consecutive versions that declare the same approver set."""
    spans: list[list[MissionVersion]] = []
    for v in versions:
        if spans and spans[-1][0].set_key == v.set_key:
            spans[-1].append(v)
        else:
            spans.append([v])
    return spans


def _judge(
    anchor: MissionVersion,
    span: Sequence[MissionVersion],
    approvals: Sequence[ChainApproval],
    signers: Signers,
) -> tuple[Link, MissionVersion | None]:
    """Did the set in force (`anchor`'s) approve this change? The link, and the version whose
    content it approved (None when it did not)."""
    v = span[0]
    decision = _decision(anchor, v)
    link = Link(v.commit, v.time, v.approvers, "broke", anchor.approvers)
    if decision.risk == "DENY":
        return _with(link, reason=f"the policy in force denies it ({decision.rule})"), None
    needed = decision.approvals_needed
    if needed == 0:
        why = f"the policy in force lets it through without approval ({decision.rule})"
        return _with(link, verdict="followed", reason=why), v
    targets = {(f"Mission/{x.name}", x.digest) for x in span}
    asked = frozenset(a.commit for a in approvals if (a.target, a.digest) in targets)
    signed = signers(anchor.set_key, asked) if asked else {}
    best: tuple[tuple[str, ...], MissionVersion] = ((), v)
    for version in span:
        approved, denied = _votes(version, approvals, signed, anchor.approvers)
        if denied:
            why = f"denied by {', '.join(denied)}"
            return _with(link, needed=needed, reason=why), None
        if len(approved) > len(best[0]):
            best = (approved, version)
    approved_by, version = best
    if len(approved_by) >= needed:
        why = f"approved by {', '.join(approved_by)} ({decision.rule})"
        return _with(link, "followed", approved_by, needed, why), version
    have = f"only {', '.join(approved_by)}" if approved_by else "none of them"
    why = (
        f"{decision.risk} needs {needed} distinct approver(s) of the set before it; {have}"
        " signed an approval of this content"
    )
    return _with(link, approved_by=approved_by, needed=needed, reason=why), None


def _with(
    link: Link,
    verdict: LinkVerdict = "broke",
    approved_by: tuple[str, ...] = (),
    needed: int = 0,
    reason: str = "",
) -> Link:
    return Link(
        link.commit, link.time, link.approvers, verdict, link.previous, approved_by, needed, reason
    )


def _decision(anchor: MissionVersion, v: MissionVersion) -> RiskDecision:
    """The stricter of the trusted policy's and the proposed policy's decision on the change."""
    verb: Verb = "update" if v.name == anchor.name else "create"  # a rename is a new Mission
    changed = tuple(
        f"spec.{k}"
        for k in sorted(anchor.spec.keys() | v.spec.keys())
        if anchor.spec.get(k) != v.spec.get(k)
    )
    subject = Subject("Mission", v.name, verb, v.spec, v.labels, changed, before=anchor.spec)
    return stricter_classify(subject, (anchor.mission.policy.rules, v.mission.policy.rules))


def _votes(
    version: MissionVersion,
    approvals: Sequence[ChainApproval],
    signed: Mapping[str, str],
    in_force: tuple[str, ...],
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Distinct approvers of the set in force who approved / denied exactly this content."""
    approve: set[str] = set()
    deny: set[str] = set()
    for a in approvals:
        if a.target != f"Mission/{version.name}" or a.digest != version.digest:
            continue
        who = signed.get(a.commit)
        if who is None or who not in in_force:
            continue
        (deny if a.decision == "deny" else approve).add(who)
    return tuple(sorted(approve)), tuple(sorted(deny))


def chain_to_json(chain: TrustChain) -> dict[str, Any]:
    """`mc trust --json`: the links oldest first and where HEAD stands."""
    return {
        "head_follows": chain.head_follows,
        "head": {"name": chain.head_name, "digest": chain.head_digest, "approvers": chain.head},
        "trusted": list(chain.trusted),
        "root": chain.root,
        "truncated": chain.truncated,
        "foreign": chain.foreign,
        "refusal": None if chain.head_follows else refusal(chain),
        "fix": None if chain.head_follows else fix(chain),
        "links": [
            {
                "commit": lk.commit,
                "time": lk.time.isoformat(),
                "approvers": list(lk.approvers),
                "verdict": lk.verdict,
                "previous": list(lk.previous),
                "approved_by": list(lk.approved_by),
                "needed": lk.needed,
                "reason": lk.reason,
            }
            for lk in chain.links
        ],
    }


def basis_to_json(basis: TrustBasis | None) -> dict[str, Any] | None:
    if basis is None:
        return None
    return {
        "verdict": basis.verdict,
        "trusted": list(basis.trusted),
        "root": basis.root,
        "reason": basis.reason,
        "fix": basis.fix,
    }


def basis_from_json(data: Mapping[str, Any] | None) -> TrustBasis | None:
    if data is None:
        return None
    verdicts: dict[str, BasisVerdict] = {"chain": "chain", "refused": "refused", "anew": "anew"}
    return TrustBasis(
        verdicts[str(data["verdict"])],
        tuple(str(n) for n in data["trusted"]),
        None if data["root"] is None else str(data["root"]),
        str(data["reason"]),
        None if data["fix"] is None else str(data["fix"]),
    )
