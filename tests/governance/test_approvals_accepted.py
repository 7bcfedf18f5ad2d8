"""Approvals that count: signed by a declared approver's key, verified by git, for the current
content — and what they unlock (HIGH: one approver, RED: two distinct approvers)."""

from __future__ import annotations

import json
from pathlib import Path

from governance_harness import GovRepo, Signer, doc, git


def _tofu(repo: GovRepo) -> None:
    repo.commit("mission")
    first = repo.apply()
    assert first.plan.trust_on_first_use
    assert first.result is not None and not first.result.pending


def test_ssh_signed_approval_lets_a_high_change_apply(repo: GovRepo, alice: Signer) -> None:
    _tofu(repo)
    old = repo.applied_digest("Agent/summarizer")
    repo.agent("summarizer", version="v2")
    repo.commit("new summarizer command")

    waiting = repo.apply()
    assert waiting.result is not None
    assert [a.key for a in waiting.result.pending] == ["Agent/summarizer"]
    assert waiting.result.pending[0].decision.risk == "HIGH"
    assert repo.applied_digest("Agent/summarizer") == old
    assert repo.pending() == ["Agent/summarizer"]

    path = repo.approve(alice, "Agent/summarizer")
    applied = repo.apply()

    assert applied.result is not None
    assert "Agent/summarizer" in [a.key for a in applied.result.applied]
    assert repo.applied_digest("Agent/summarizer") == repo.digest("Agent/summarizer") != old
    assert repo.pending() == []
    row = repo.row_for(path)
    assert (row.status, row.approver, row.reason) == ("accepted", "alice", None)
    assert row.evidence["key"].startswith("SHA256:")
    updated = repo.events("resource.updated", "Agent/summarizer")
    assert updated[-1].data["approved_by"] == ["alice"]
    accepted = repo.events("approval.accepted", "Agent/summarizer")
    assert [e.data["approver"] for e in accepted] == ["alice"]


def test_gpg_signed_approval_counts(tmp_path: Path, alice: Signer, carol: Signer) -> None:
    repo = GovRepo(tmp_path / "gpg-mission", [alice, carol])
    repo.agent("summarizer")
    _tofu(repo)
    repo.agent("summarizer", version="v2")
    repo.commit("new summarizer command")
    assert repo.action("Agent/summarizer").status == "needs_approval"

    path = repo.approve(carol, "Agent/summarizer")

    action = repo.action("Agent/summarizer")
    assert (action.status, action.approved_by) == ("apply", ("carol",))
    repo.apply()
    row = repo.row_for(path)
    assert (row.status, row.approver) == ("accepted", "carol")
    assert row.evidence["signature"] in ("G", "U")  # good; validity is the declared fingerprint
    assert row.evidence["key"].upper().endswith(carol.signing_key[-16:])
    assert repo.applied_digest("Agent/summarizer") == repo.digest("Agent/summarizer")


def test_changing_approvers_is_red_and_needs_two_distinct_approvers(
    tmp_path: Path, alice: Signer, bob: Signer, carol: Signer, dave: Signer
) -> None:
    repo = GovRepo(tmp_path / "red-mission", [alice, bob, carol])
    repo.agent("summarizer")
    _tofu(repo)
    repo.mission(approvers=[alice, bob, carol, dave])
    repo.commit("add dave as an approver")

    action = repo.action("Mission/governed")
    assert (action.decision.risk, action.decision.rule) == ("RED", "default: approver set changed")
    assert action.decision.approvals_needed == 2

    repo.approve(alice, "Mission/governed")
    one = repo.action("Mission/governed")
    assert (one.status, one.approved_by) == ("needs_approval", ("alice",))
    repo.apply()
    assert repo.pending() == ["Mission/governed"]

    repo.approve(carol, "Mission/governed")  # a GPG approver is the second, distinct person
    two = repo.action("Mission/governed")
    assert (two.status, two.approved_by) == ("apply", ("alice", "carol"))
    repo.apply()
    assert repo.pending() == []
    assert repo.applied_digest("Mission/governed") == repo.digest("Mission/governed")
    # dave is now an approver: his signature counts from here on
    repo.agent("summarizer", version="v2")
    repo.commit("new command")
    repo.approve(dave, "Agent/summarizer")
    assert repo.action("Agent/summarizer").approved_by == ("dave",)


def test_mc_approve_signs_with_the_ssh_key_in_local_git_config(
    repo: GovRepo, alice: Signer
) -> None:
    _tofu(repo)
    repo.agent("summarizer", version="v2")
    repo.commit("new summarizer command")
    git(repo.root, "config", "gpg.format", "ssh")
    git(repo.root, "config", "user.signingkey", alice.signing_key)
    git(repo.root, "config", "user.name", "Alice Example")

    done = repo.mc("approve", "Agent/summarizer", "--reason", "reviewed the new command")

    assert done.returncode == 0, done.stderr
    assert "Approved Agent/summarizer" in done.stdout
    files = sorted((repo.root / "approvals").glob("*.yaml"))
    assert len(files) == 1
    body = files[0].read_text()
    assert repo.digest("Agent/summarizer") in body and "reviewed the new command" in body
    assert "-----BEGIN SSH SIGNATURE-----" in git(repo.root, "cat-file", "commit", "HEAD")
    assert git(repo.root, "status", "--porcelain", "--", "approvals") == ""

    applied = repo.mc("apply", "--auto-approve", "--no-wait")
    assert applied.returncode == 0, applied.stderr
    assert repo.applied_digest("Agent/summarizer") == repo.digest("Agent/summarizer")
    listed = json.loads(repo.mc("approvals", "--json").stdout)
    [decided] = listed["decided"]
    assert (decided["approver"], decided["status"]) == ("alice", "accepted")
    assert decided["evidence"]["commit"] == git(repo.root, "log", "-1", "--format=%H", "--", ".")


def test_approvals_merged_from_branches_count(repo: GovRepo, alice: Signer, bob: Signer) -> None:
    """The usual review flow: each approver signs on a branch (or on main), and an unsigned
    merge commit brings them together; the merge took each file from a signed parent."""
    _tofu(repo)
    repo.mission(approvers=[bob, alice])  # reordered approvers: the approver set changed
    repo.commit("reorder approvers")
    assert repo.action("Mission/governed").decision.risk == "RED"
    git(repo.root, "switch", "-q", "-c", "alice-review")
    repo.approve(alice, "Mission/governed")
    git(repo.root, "switch", "-q", "main")
    repo.approve(bob, "Mission/governed")
    git(repo.root, "merge", "-q", "--no-ff", "--no-edit", "alice-review")
    assert git(repo.root, "log", "-1", "--format=%G?") == "N"

    action = repo.action("Mission/governed")
    assert (action.status, action.approved_by) == ("apply", ("alice", "bob"))


def test_approval_file_name_need_not_be_ascii(repo: GovRepo, alice: Signer) -> None:
    """Only metadata.name is a DNS label; the file is matched by the name git lists."""
    _tofu(repo)
    repo.agent("summarizer", version="v2")
    repo.commit("new summarizer command")
    spec = {"target": "Agent/summarizer", "digest": repo.digest("Agent/summarizer")}
    repo.write("approvals/zoë-approves.yaml", doc("Approval", "zoe-approves", spec))
    repo.commit("approve", alice)

    action = repo.action("Agent/summarizer")
    assert (action.status, action.approved_by) == ("apply", ("alice",))
