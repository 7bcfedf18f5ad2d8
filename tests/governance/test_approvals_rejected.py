"""Approvals that do not count: each is recorded as rejected with an `approval.rejected` event
whose reason says why, and the action it was meant for stays pending."""

from __future__ import annotations

import time
from pathlib import Path

from governance_harness import GovRepo, Signer, at, git

HIGH = "Agent/summarizer"


def _still_pending(repo: GovRepo, target: str = HIGH) -> None:
    action = repo.action(target)
    assert (action.status, action.approved_by) == ("needs_approval", ())
    assert target in repo.pending()
    assert repo.applied_digest(target) != repo.digest(target)


def test_unsigned_commit(waiting: GovRepo) -> None:
    path = waiting.approve(None, HIGH)
    waiting.apply()

    event = waiting.rejection(path)
    assert event.subject == HIGH
    assert "is not signed" in event.data["reason"]
    assert waiting.row_for(path).status == "rejected"
    _still_pending(waiting)


def test_signed_by_an_undeclared_key(waiting: GovRepo, mallory: Signer) -> None:
    path = waiting.approve(mallory, HIGH)
    waiting.apply()

    reason = waiting.rejection(path).data["reason"]
    assert "signed by a key no applied approver declares" in reason
    assert "SHA256:" in reason  # names the key git saw
    assert waiting.row_for(path).approver is None
    _still_pending(waiting)


def test_key_of_a_removed_approver(waiting: GovRepo, alice: Signer, bob: Signer) -> None:
    waiting.mission(approvers=[alice])
    waiting.commit("bob leaves")
    waiting.approve(alice, "Mission/governed", name="alice-removes-bob")
    waiting.approve(bob, "Mission/governed", name="bob-removes-bob")
    waiting.apply()
    assert waiting.applied_digest("Mission/governed") == waiting.digest("Mission/governed")

    path = waiting.approve(bob, HIGH)  # bob's key was declared once, but not any more
    waiting.apply()

    assert "no applied approver declares" in waiting.rejection(path).data["reason"]
    _still_pending(waiting)


def test_approval_of_an_old_digest(waiting: GovRepo, alice: Signer) -> None:
    old = waiting.digest(HIGH)
    path = waiting.approve(alice, HIGH)
    waiting.agent("summarizer", version="v3")  # the target changes after the approval
    waiting.commit("another command")
    waiting.apply()

    reason = waiting.rejection(path).data["reason"]
    assert f"approves digest {old[:19]}" in reason
    assert f"{HIGH} is now {waiting.digest(HIGH)[:19]}" in reason
    _still_pending(waiting)


def test_approval_edited_later_in_an_unsigned_commit(waiting: GovRepo, alice: Signer) -> None:
    path = waiting.approve(alice, HIGH)
    assert waiting.action(HIGH).approved_by == ("alice",)  # it counted while alice's commit
    text = (waiting.root / path).read_text()  # was the last one to touch the file
    (waiting.root / path).write_text(text.replace("looks right", "edited by someone else"))
    waiting.commit("edit the reason")
    waiting.apply()

    reason = waiting.rejection(path).data["reason"]
    assert f"commit {waiting.head()[:12]} is not signed" in reason
    _still_pending(waiting)


def test_same_approver_twice_counts_once_for_red(
    waiting: GovRepo, alice: Signer, dave: Signer
) -> None:
    waiting.mission(approvers=[*waiting.approvers, dave])
    waiting.commit("add dave")
    first = waiting.approve(alice, "Mission/governed", name="alice-first")
    second = waiting.approve(alice, "Mission/governed", name="alice-second")
    waiting.apply()

    rows = {path: waiting.row_for(path) for path in (first, second)}
    assert sorted(r.status for r in rows.values()) == ["accepted", "rejected"]
    [extra] = [path for path, r in rows.items() if r.status == "rejected"]
    assert "alice already decided on this digest" in waiting.rejection(extra).data["reason"]
    action = waiting.action("Mission/governed")
    assert (action.decision.risk, action.status, action.approved_by) == (
        "RED",
        "needs_approval",
        ("alice",),
    )
    assert "Mission/governed" in waiting.pending()


def test_approval_on_an_unmerged_branch_is_not_seen(waiting: GovRepo, alice: Signer) -> None:
    git(waiting.root, "switch", "-q", "-c", "approve-summarizer")
    path = waiting.approve(alice, HIGH)
    git(waiting.root, "switch", "-q", "main")
    waiting.apply()

    assert not (waiting.root / path).exists()
    assert [r for r in waiting.approval_rows() if r.evidence.get("path") == path] == []
    _still_pending(waiting)

    git(waiting.root, "merge", "-q", "--ff-only", "approve-summarizer")  # merged: it counts
    assert waiting.action(HIGH).status == "apply"


def test_expired_approval(tmp_path: Path, alice: Signer, bob: Signer) -> None:
    repo = GovRepo(tmp_path / "ttl-mission", [alice, bob])
    repo.mission(policy={"approval_ttl": "1s"})
    repo.agent("summarizer")
    repo.commit("mission with a one-second approval ttl")
    repo.apply()
    repo.agent("summarizer", version="v2")
    repo.commit("new command")
    path = repo.approve(alice, HIGH)
    signed_at = repo.commit_time()
    assert repo.action(HIGH, clock=at(signed_at)).status == "apply"  # valid while fresh

    time.sleep(2.1)
    repo.apply()

    reason = repo.rejection(path).data["reason"]
    assert reason.startswith("expired: counts from") and "approval_ttl" in reason
    _still_pending(repo)


def test_malformed_approval_file_does_not_stop_the_mission(waiting: GovRepo, alice: Signer) -> None:
    waiting.write("approvals/broken.yaml", "apiVersion: mc/v1\nkind: Approval\nspec: [oops\n")
    waiting.task("write-notes", agent="summarizer")  # other work in the same commit
    waiting.commit("a broken approval and a new task", alice)

    applied = waiting.apply()

    assert applied.result is not None
    assert "Task/write-notes" in [a.key for a in applied.result.applied]
    reason = waiting.rejection("approvals/broken.yaml").data["reason"]
    assert reason.startswith("malformed approval file:")
    assert waiting.row_for("approvals/broken.yaml").evidence["commit"] == waiting.head()
    _still_pending(waiting)


def test_approval_for_an_unknown_target(waiting: GovRepo, alice: Signer) -> None:
    digest = waiting.digest(HIGH)
    path = waiting.approve(alice, "Task/no-such-task", digest=digest)
    waiting.apply()

    event = waiting.rejection(path)
    assert event.subject == "Task/no-such-task"
    assert event.data["reason"] == "unknown target Task/no-such-task"
    _still_pending(waiting)


def test_approval_rewritten_in_an_unsigned_merge(waiting: GovRepo, alice: Signer) -> None:
    """A merge that changes an approval file (content of neither parent) is the last commit
    to touch it: alice's signature on the earlier version must not vouch for the new one."""
    git(waiting.root, "switch", "-q", "-c", "side", "HEAD~1")
    waiting.write("notes.txt", "unrelated work\n")
    waiting.commit("side work")
    git(waiting.root, "switch", "-q", "main")
    path = waiting.approve(alice, "Agent/summarizer", digest="sha256:" + "0" * 64)
    assert waiting.action(HIGH).status == "needs_approval"  # signed, but for other content
    git(waiting.root, "merge", "-q", "--no-commit", "side")
    waiting.approval_file(path.split("/")[1][:-5], HIGH)  # now names the pending content
    waiting.commit("merge side")
    assert len(git(waiting.root, "log", "-1", "--format=%P").split()) == 2
    waiting.apply()

    assert f"commit {waiting.head()[:12]} is not signed" in waiting.rejection(path).data["reason"]
    _still_pending(waiting)


def test_signed_by_an_undeclared_gpg_key(waiting: GovRepo, carol: Signer) -> None:
    """carol's key is in her own keyring, not in the one mc builds from the approvers."""
    path = waiting.approve(carol, HIGH)
    waiting.apply()

    reason = waiting.rejection(path).data["reason"]
    assert "is signed by a key no applied approver declares" in reason
    assert waiting.row_for(path).evidence["key"].upper() in carol.signing_key
    _still_pending(waiting)
