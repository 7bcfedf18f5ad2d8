"""Decisions over time and how a person sees them: a deny is final until the content changes,
a changed spec voids earlier approvals, `mc explain`, `mc approvals --json`, `mc approve`."""

from __future__ import annotations

import json
from pathlib import Path

from governance_harness import GovRepo, Signer, git, run

HIGH = "Agent/summarizer"


def test_deny_is_final_until_the_spec_changes(waiting: GovRepo, alice: Signer, bob: Signer) -> None:
    waiting.approve(alice, HIGH, deny=True)
    waiting.approve(bob, HIGH)  # an approval from someone else does not outvote a deny
    waiting.apply()

    denied = waiting.action(HIGH)
    assert (denied.status, denied.note) == ("denied", "denied by alice")
    shown = waiting.mc("plan")
    assert shown.returncode == 0, shown.stderr
    assert f"~ {HIGH}" in shown.stdout and "denied" in shown.stdout
    assert "denied by alice" in shown.stdout
    assert waiting.applied_digest(HIGH) != waiting.digest(HIGH)
    assert HIGH in waiting.pending()  # listed as waiting on a person, not applied

    waiting.agent("summarizer", version="v3")
    waiting.commit("a different command")
    again = waiting.action(HIGH)
    assert (again.status, again.approved_by, again.note) == ("needs_approval", (), None)


def test_a_changed_spec_voids_an_accepted_approval(waiting: GovRepo, alice: Signer) -> None:
    path = waiting.approve(alice, HIGH)
    assert waiting.action(HIGH).status == "apply"
    waiting.apply()
    assert waiting.row_for(path).status == "accepted"

    waiting.agent("summarizer", version="v3")
    waiting.commit("changed again")
    waiting.apply()

    assert waiting.row_for(path).status == "rejected"
    assert [e.kind for e in waiting.events("approval.accepted")] == ["approval.accepted"]
    assert "approves digest" in waiting.rejection(path).data["reason"]
    action = waiting.action(HIGH)
    assert (action.status, action.approved_by) == ("needs_approval", ())


def test_explain_prints_the_decision_and_the_rule(waiting: GovRepo, alice: Signer) -> None:
    before = waiting.mc("explain", HIGH)
    assert before.returncode == 0, before.stderr
    assert "risk HIGH by default: agent command/env; status needs_approval" in before.stdout
    assert "approvals: 0/1 (none yet)" in before.stdout

    waiting.approve(alice, HIGH)
    after = waiting.mc("explain", HIGH)
    assert "status apply" in after.stdout and "approvals: 1/1 (alice)" in after.stdout

    unknown = waiting.mc("explain", "Agent/nobody")
    assert unknown.returncode == 1 and "not declared at HEAD" in unknown.stdout + unknown.stderr


def test_approvals_json_lists_decisions_with_evidence(
    waiting: GovRepo, alice: Signer, mallory: Signer
) -> None:
    good = waiting.approve(alice, HIGH)
    bad = waiting.approve(mallory, HIGH)
    signed = git(waiting.root, "log", "-1", "--format=%H", "--", good)
    waiting.apply()

    listed = waiting.mc("approvals", "--json")
    assert listed.returncode == 0, listed.stderr
    body = json.loads(listed.stdout)
    decided = {d["evidence"]["path"]: d for d in body["decided"]}
    assert decided[good]["status"] == "accepted" and decided[good]["approver"] == "alice"
    assert decided[good]["evidence"]["commit"] == signed
    fingerprint = run(["ssh-keygen", "-l", "-f", alice.signing_key]).split()[1]
    assert decided[good]["evidence"]["key"] == fingerprint  # SHA256:… of alice's key
    shown = waiting.mc("approvals", env={"COLUMNS": "100"})
    assert f"commit {signed[:12]} key {fingerprint}" in shown.stdout  # whole, never cut
    assert decided[good]["digest"] == waiting.digest(HIGH)
    assert decided[bad]["status"] == "rejected" and decided[bad]["approver"] is None
    assert "no applied approver declares" in decided[bad]["reason"]
    assert body["pending"] == []  # alice's approval let the change apply


def test_approve_without_a_signing_key_refuses_and_leaves_nothing(waiting: GovRepo) -> None:
    head = waiting.head()

    refused = waiting.mc("approve", HIGH)

    assert refused.returncode == 1
    message = refused.stdout + refused.stderr
    assert "no commit signing key is configured" in message
    assert "git config gpg.format ssh" in message and "user.signingkey" in message
    assert "Traceback" not in message
    assert waiting.head() == head
    assert not (waiting.root / "approvals").exists()
    assert git(waiting.root, "status", "--porcelain") == ""


def test_approve_with_a_broken_signing_key_leaves_nothing(waiting: GovRepo, tmp_path: Path) -> None:
    git(waiting.root, "config", "gpg.format", "ssh")
    git(waiting.root, "config", "user.signingkey", str(tmp_path / "missing.pub"))
    head = waiting.head()

    refused = waiting.mc("approve", HIGH)

    assert refused.returncode == 1
    assert "signing the approval commit failed" in refused.stdout + refused.stderr
    assert waiting.head() == head
    assert list((waiting.root / "approvals").glob("*")) == []
    assert git(waiting.root, "status", "--porcelain") == ""


def test_approving_the_same_content_twice_deletes_nothing(waiting: GovRepo, alice: Signer) -> None:
    git(waiting.root, "config", "gpg.format", "ssh")
    git(waiting.root, "config", "user.signingkey", alice.signing_key)
    first = waiting.mc("approve", HIGH)
    assert first.returncode == 0, first.stderr

    second = waiting.mc("approve", HIGH)

    assert second.returncode == 0, second.stdout + second.stderr
    assert len(list((waiting.root / "approvals").glob("*.yaml"))) == 2
    assert git(waiting.root, "status", "--porcelain") == ""  # nothing deleted, nothing dirty
    action = waiting.action(HIGH)
    assert (action.status, action.approved_by) == ("apply", ("alice",))


def test_mc_task_names_who_denied_a_task_and_why(repo: GovRepo, alice: Signer) -> None:
    repo.task("deploy", agent="summarizer", approval="before")
    repo.commit("mission")
    repo.apply()
    repo.approval_file("deny-deploy", "Task/deploy", deny=True, reason="not during the freeze")
    repo.commit("Deny Task/deploy", alice)
    repo.apply(drive=True)

    shown = repo.mc("task", "deploy")
    explained = repo.mc("explain", "Task/deploy")

    assert shown.returncode == 0, shown.stderr
    named = "denied by alice via git: “not during the freeze”"
    assert named in " ".join(shown.stdout.split()), shown.stdout
    head = [line for line in shown.stdout.splitlines() if line.startswith(("State:", "Why:"))]
    assert len(head) == 2 and all(named in line for line in head), head
    assert named in " ".join(explained.stdout.split()), explained.stdout


def test_plan_shows_a_changed_approver_list_element_by_element(
    repo: GovRepo, alice: Signer, bob: Signer, dave: Signer
) -> None:
    repo.commit("mission")
    repo.apply()
    repo.mission(approvers=[alice, bob, dave])
    repo.commit("add dave as an approver")

    shown = repo.mc("plan", env={"COLUMNS": "100"})

    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert "    ~ spec.approvers: 2 → 3 elements" in lines
    added = [line for line in lines if line.startswith("        + ")]
    assert len(added) == 1 and '"name": "dave"' in added[0]
    assert not any('"name": "alice"' in line for line in lines)
