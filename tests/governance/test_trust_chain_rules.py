"""The trust chain on plain data (no git): mission versions, approvals and who signed them ->
links and a verdict. The git side (real history, real signatures) is test_trust_chain.py."""

from __future__ import annotations

import base64
import hashlib
import struct
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pytest

from reconciler.governance.trust_chain import (
    ChainApproval,
    MissionVersion,
    basis_of,
    derive_chain,
)

T0 = datetime(2026, 11, 29, 12, 0, 0)
MISSION_LOW = {"name": "missions-low", "match": {"kind": ["Mission"]}, "decide": "LOW"}
APPROVERS_HIGH = {
    "name": "one-look-at-approvers",
    "match": {"kind": ["Mission"], "fields": ["spec.approvers"]},
    "decide": "HIGH",
}


def ed25519(seed: str) -> str:
    """A well-formed ssh-ed25519 public key line (its 32 bytes derived from `seed`)."""
    kind = b"ssh-ed25519"
    data = hashlib.sha256(seed.encode()).digest()
    blob = struct.pack(">I", len(kind)) + kind + struct.pack(">I", len(data)) + data
    return f"ssh-ed25519 {base64.b64encode(blob).decode()} {seed}"


def person(spec: str) -> dict[str, Any]:
    """'alice' (key A), 'alice:2' (the same name, another key), 'alice@42' (a Telegram id)."""
    name, _, tg = spec.partition("@")
    name, _, key = name.partition(":")
    out: dict[str, Any] = {"name": name, "ssh_keys": [ed25519(name + key)]}
    return {**out, "telegram_ids": [int(tg)]} if tg else out


def nobody(set_key: str, commits: frozenset[str]) -> dict[str, str]:
    return {}


@dataclass(frozen=True)
class V:
    """One version of mission.yaml: its approvers (and rules, name)."""

    approvers: tuple[str, ...]
    rules: tuple[dict[str, Any], ...] = ()
    name: str = "m"
    description: str = ""


def versions_of(table: list[V]) -> list[MissionVersion]:
    return [
        MissionVersion(
            f"c{i}",
            T0 + timedelta(minutes=i),
            v.name,
            f"sha256:d{i}",
            {
                "description": v.description,
                "approvers": [person(a) for a in v.approvers],
                "policy": {"rules": list(v.rules)},
            },
            {},
        )
        for i, v in enumerate(table)
    ]


@dataclass(frozen=True)
class Case:
    name: str
    history: list[V]
    # (version index approved, approver who signed, by which version's set the key is known)
    approvals: list[tuple[int, str]] = field(default_factory=list)
    denials: list[tuple[int, str]] = field(default_factory=list)
    verdicts: list[tuple[int, str]] = field(default_factory=list)  # (version index, verdict)
    follows: bool = True
    trusted: tuple[str, ...] = ()


AB = V(("alice", "bob"))
ABD = V(("alice", "bob", "dave"))
MALLORY = V(("mallory",))

CASES = [
    Case(
        "one version: trusted on first use", [AB], verdicts=[(0, "first_use")], trusted=AB.approvers
    ),
    Case(
        "no approvers at first: the first declared set is the one trusted",
        [V(()), AB],
        verdicts=[(1, "first_use")],
        trusted=AB.approvers,
    ),
    Case(
        "an unsigned takeover breaks the chain",
        [AB, MALLORY],
        verdicts=[(0, "first_use"), (1, "broke")],
        follows=False,
        trusted=AB.approvers,
    ),
    Case(
        "restoring the set in force follows again",
        [AB, MALLORY, AB],
        verdicts=[(0, "first_use"), (1, "broke"), (2, "restored")],
        trusted=AB.approvers,
    ),
    Case(
        "two approvers of the set before approve the change: followed (RED)",
        [AB, ABD],
        approvals=[(1, "alice"), (1, "bob")],
        verdicts=[(0, "first_use"), (1, "followed")],
        trusted=ABD.approvers,
    ),
    Case(
        "one approval is not enough for RED",
        [AB, ABD],
        approvals=[(1, "alice")],
        verdicts=[(1, "broke")],
        follows=False,
        trusted=AB.approvers,
    ),
    Case(
        "approvals of two different contents do not add up",
        [AB, ABD, V(ABD.approvers, description="tweaked")],
        approvals=[(1, "alice"), (2, "bob")],
        verdicts=[(1, "broke")],
        follows=False,
        trusted=AB.approvers,
    ),
    Case(
        "both approve a later content of the same set: followed",
        [AB, ABD, V(ABD.approvers, description="tweaked")],
        approvals=[(2, "alice"), (2, "bob")],
        verdicts=[(1, "followed")],
        trusted=ABD.approvers,
    ),
    Case(
        "a deny by the set in force is final",
        [AB, ABD],
        approvals=[(1, "alice"), (1, "bob")],
        denials=[(1, "bob")],
        verdicts=[(1, "broke")],
        follows=False,
        trusted=AB.approvers,
    ),
    Case(
        "the takeover's own approvers cannot approve it",
        [AB, MALLORY],
        approvals=[(1, "mallory")],
        verdicts=[(1, "broke")],
        follows=False,
        trusted=AB.approvers,
    ),
    Case(
        "after a break, the untrusted set cannot approve the next change",
        [AB, MALLORY, V(("mallory", "dave"))],
        approvals=[(2, "mallory")],
        verdicts=[(1, "broke"), (2, "broke")],
        follows=False,
        trusted=AB.approvers,
    ),
    Case(
        "the same name with another key is a new set",
        [AB, V(("alice:2", "bob"))],
        verdicts=[(1, "broke")],
        follows=False,
        trusted=AB.approvers,
    ),
    Case(
        "a new Telegram id is a new set",
        [AB, V(("alice@42", "bob"))],
        verdicts=[(1, "broke")],
        follows=False,
        trusted=AB.approvers,
    ),
    Case(
        "a trusted rule that makes approver changes HIGH lets one approver add another",
        [V(("alice",), (APPROVERS_HIGH,)), V(("alice", "bob"), (APPROVERS_HIGH,))],
        approvals=[(1, "alice")],
        verdicts=[(1, "followed")],
        trusted=("alice", "bob"),
    ),
    Case(
        "a LOW rule slipped in unsigned does not lower the bar (the trusted content's rules do)",
        [AB, V(AB.approvers, (MISSION_LOW,)), V(("mallory",), (MISSION_LOW,))],
        verdicts=[(0, "first_use"), (2, "broke")],
        follows=False,
        trusted=AB.approvers,
    ),
    Case(
        "a rename is a new Mission: RED, judged by the set in force",
        [AB, V(("mallory",), name="other")],
        verdicts=[(1, "broke")],
        follows=False,
        trusted=AB.approvers,
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_trust_chain(case: Case) -> None:
    versions = versions_of(case.history)
    approvals = [
        ChainApproval(
            f"a{i}-{who}",
            "approvals/x.yaml",
            f"Mission/{versions[i].name}",
            versions[i].digest,
            "approve",
        )
        for i, who in case.approvals
    ] + [
        ChainApproval(
            f"n{i}-{who}",
            "approvals/x.yaml",
            f"Mission/{versions[i].name}",
            versions[i].digest,
            "deny",
        )
        for i, who in case.denials
    ]
    # git's verdict, per approver set: a commit is credited to a person only by that set's keys
    signers = {
        v.set_key: {
            a.commit: who
            for a in approvals
            for who in [a.commit.split("-", 1)[1]]
            if any(p["name"] == who for p in v.spec["approvers"])
        }
        for v in versions
    }

    asked: list[frozenset[str]] = []

    def signed(set_key: str, commits: frozenset[str]) -> dict[str, str]:
        asked.append(commits)
        return {c: who for c, who in signers.get(set_key, {}).items() if c in commits}

    chain = derive_chain(versions, approvals, signed)

    by_commit = {link.commit: link.verdict for link in chain.links}
    for index, verdict in case.verdicts:
        assert by_commit.get(f"c{index}") == verdict, chain.links
    assert chain.head_follows is case.follows
    assert chain.trusted == tuple(sorted(case.trusted))
    assert all(asked), "git is asked only about approvals of a change being judged"


def test_the_refusal_names_the_commit_and_the_fix() -> None:
    versions = versions_of([AB, MALLORY])
    chain = derive_chain(versions, [], nobody)

    basis = basis_of(chain, anew=False)

    assert basis.verdict == "refused" and basis.root == "c0"
    assert basis.reason.startswith("commit c1 set the approvers to (mallory) without the approval")
    assert "RED needs 2 distinct approver(s) of the set before it; none of them" in basis.reason
    assert basis.fix is not None
    assert basis.fix.startswith("have 2 of (alice, bob) approve Mission/m at sha256:d1")
    assert "--trust-anew" in basis.fix


def test_trusting_anew_names_what_it_trusts_and_what_history_says() -> None:
    chain = derive_chain(versions_of([AB, MALLORY]), [], nobody)

    basis = basis_of(chain, anew=True)

    assert basis.verdict == "anew" and basis.trusted == ("mallory",)
    assert "trusting the approvers HEAD declares (mallory)" in basis.reason
    assert "history alone would refuse it: commit c1" in basis.reason


def test_a_history_longer_than_mc_reads_is_not_trusted() -> None:
    chain = derive_chain(versions_of([AB]), [], nobody, truncated=True)

    assert not chain.head_follows
    basis = basis_of(chain, anew=False)
    assert "more versions in history than mc reads" in basis.reason
    assert basis.fix is not None and basis.fix.startswith("if you trust HEAD's approvers")
