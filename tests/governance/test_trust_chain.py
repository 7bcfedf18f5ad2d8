"""Trust comes from git history, not from the state file: with the state lost, the approver set
HEAD declares must follow from the first one in mission.yaml's history, each change approved by
the set before it — through the real CLI and `mc serve`, with real ssh-keygen signatures."""

from __future__ import annotations

import json
from pathlib import Path

from governance_harness import GovRepo, Signer
from helpers.mc import flat
from helpers.serve import served
from helpers.waiting import wait_until


def _lose_state(repo: GovRepo) -> None:
    """What the attacker (or an accident) does: `rm .mc/state.duckdb*`."""
    for path in repo.mc_dir.glob("state.duckdb*"):
        path.unlink()
    assert not repo.state_file.exists()


def _takeover(repo: GovRepo, mallory: Signer) -> str:
    """Applied with alice and bob; then an unsigned commit makes mallory the only approver
    and changes the agent's command. Pending (RED) while the state lasts. The new HEAD."""
    repo.commit("mission")
    repo.apply()
    repo.mission(approvers=[mallory])
    repo.agent("summarizer", version="evil")
    takeover = repo.commit("make mallory the only approver")
    assert repo.apply().result is not None
    assert "Mission/governed" in repo.pending()
    return takeover


def _applied_nothing(repo: GovRepo) -> None:
    if repo.state_file.exists():
        assert repo.applied_digest("Mission/governed") is None
        assert repo.applied_digest("Agent/summarizer") is None


def test_lost_state_refuses_an_unsigned_approver_takeover(repo: GovRepo, mallory: Signer) -> None:
    takeover = _takeover(repo, mallory)
    _lose_state(repo)

    applied = repo.mc("apply", "--auto-approve", "--no-wait")

    assert applied.returncode == 1, applied.stdout
    said = flat(applied.stderr)
    assert "refused: nothing applied" in said
    assert f"commit {takeover[:12]} set the approvers to (mallory)" in said
    assert "without the approval of the set before it (alice, bob)" in said
    assert "RED needs 2 distinct approver(s)" in said
    assert "fix: have 2 of (alice, bob) approve Mission/governed" in said
    assert "--trust-anew" in said
    assert "Traceback" not in applied.stderr
    _applied_nothing(repo)

    plan = repo.mc("plan")
    assert plan.returncode == 0, plan.stderr
    assert "REFUSED:" in plan.stdout and takeover[:12] in plan.stdout
    body = repo.mc_json("plan")
    assert body["trust"]["verdict"] == "refused"
    assert body["trust"]["trusted"] == ["alice", "bob"]
    assert {a["status"] for a in body["actions"]} == {"denied"}
    assert all(a["rule"] == "trust chain broken" for a in body["actions"])


def test_lost_state_applies_a_change_the_previous_set_approved(
    repo: GovRepo, alice: Signer, bob: Signer, dave: Signer
) -> None:
    root = repo.commit("mission")
    repo.apply()
    repo.mission(approvers=[alice, bob, dave])
    change = repo.commit("add dave as an approver")
    repo.approve(alice, "Mission/governed")
    _lose_state(repo)

    one = repo.mc("apply", "--auto-approve", "--no-wait")  # RED: one approval is not enough
    assert one.returncode == 1
    assert f"commit {change[:12]}" in flat(one.stderr) and "only alice" in flat(one.stderr)

    repo.approve(bob, "Mission/governed")
    _lose_state(repo)
    applied = repo.mc("apply", "--auto-approve", "--no-wait")

    assert applied.returncode == 0, applied.stderr
    said = flat(applied.stdout)
    assert "Trust on first use:" in said
    assert f"approvers (alice, bob) trusted on first use from commit {root[:12]}" in said
    assert "1 later change(s), each approved by the set before it" in said
    assert repo.applied_digest("Mission/governed") == repo.digest("Mission/governed")
    [event] = repo.events("trust.first_use")
    assert event.data["verdict"] == "chain" and event.data["root"] == root
    assert event.data["trusted"] == ["alice", "bob", "dave"]


def test_trust_anew_applies_and_says_what_it_trusts(repo: GovRepo, mallory: Signer) -> None:
    _takeover(repo, mallory)
    _lose_state(repo)

    applied = repo.mc("apply", "--auto-approve", "--no-wait", "--trust-anew")

    assert applied.returncode == 0, applied.stderr
    said = flat(applied.stdout)
    assert "TRUSTING ANEW: --trust-anew: trusting the approvers HEAD declares (mallory)" in said
    assert "history alone would refuse it" in said
    assert repo.applied_digest("Mission/governed") == repo.digest("Mission/governed")
    [event] = repo.events("trust.anew")
    assert event.data["trusted"] == ["mallory"]

    again = repo.mc("plan")  # the applied mission judges from now on: no chain, no flag needed
    assert again.returncode == 0 and "No changes." in again.stdout


def test_serve_with_a_lost_state_and_a_broken_chain_stays_up_and_applies_nothing(
    repo: GovRepo, alice: Signer, bob: Signer, mallory: Signer
) -> None:
    takeover = _takeover(repo, mallory)
    _lose_state(repo)

    with served(repo.root) as serve:

        def refused() -> str | None:
            error = serve.facts().get("last_error")
            return error if error and "refused" in error else None

        error = wait_until(refused, 30.0, "serve to refuse the untrusted HEAD")
        assert takeover[:12] in error
        assert serve.healthy()
        status = serve.get("/api/status")
        assert status["serve"]["last_commit"] is None  # nothing reconciled, nothing applied

        repo.mission(approvers=[alice, bob])  # the fix: declare the set in force again
        fixed = repo.commit("restore alice and bob")
        serve.wait_reconciled(fixed)

    [event] = [e for e in repo.events("reconcile.error") if e.commit == takeover]
    assert any(takeover[:12] in line for line in event.data["errors"])
    assert any(line.startswith("fix: ") for line in event.data["errors"])
    assert repo.applied_digest("Mission/governed") == repo.digest("Mission/governed")


def test_mc_trust_shows_the_chain(
    repo: GovRepo, alice: Signer, bob: Signer, dave: Signer, mallory: Signer
) -> None:
    root = repo.commit("mission")
    repo.mission(approvers=[alice, bob, dave])
    added = repo.commit("add dave")
    repo.approve(alice, "Mission/governed")
    repo.approve(bob, "Mission/governed")
    repo.mission(approvers=[mallory])
    takeover = repo.commit("mallory only")  # signed by nobody

    shown = repo.mc("trust")
    assert shown.returncode == 0, shown.stderr
    text = shown.stdout
    assert root[:12] in text and "trusted on first use" in text
    assert added[:12] in text and "approved by alice, bob" in text
    assert takeover[:12] in text and "BROKE the chain" in text
    assert "HEAD breaks the chain:" in flat(text) and "Fix:" in text

    body = repo.mc_json("trust")
    assert body["head_follows"] is False
    assert body["root"] == root
    assert body["trusted"] == ["alice", "bob", "dave"]
    assert [(lk["commit"], lk["verdict"]) for lk in body["links"]] == [
        (root, "first_use"),
        (added, "followed"),
        (takeover, "broke"),
    ]
    assert body["links"][1]["approved_by"] == ["alice", "bob"]
    assert body["links"][2]["previous"] == ["alice", "bob", "dave"]
    assert body["links"][2]["needed"] == 2
    assert body["head"]["approvers"] == ["mallory"]
    assert f"commit {takeover[:12]}" in body["refusal"]

    repo.mission(approvers=[alice, bob, dave])
    restored = repo.commit("revert the takeover")
    body = repo.mc_json("trust")
    assert body["head_follows"] is True and body["refusal"] is None
    assert body["links"][-1] == {**body["links"][-1], "commit": restored, "verdict": "restored"}


def test_a_signed_takeover_by_an_outsider_does_not_count(
    repo: GovRepo, mallory: Signer, tmp_path: Path
) -> None:
    """Mallory signs her own takeover and her own approvals: her key is not in the set before."""
    repo.commit("mission")
    repo.mission(approvers=[mallory])
    takeover = repo.commit("mallory only", mallory)
    repo.approve(mallory, "Mission/governed", name="ok-mallory-1")
    repo.approve(mallory, "Mission/governed", name="ok-mallory-2")

    body = repo.mc_json("trust")

    assert body["head_follows"] is False
    assert body["links"][-1]["commit"] == takeover
    assert "none of them signed an approval" in body["links"][-1]["reason"]
    applied = repo.mc("apply", "--auto-approve", "--no-wait")
    assert applied.returncode == 1 and takeover[:12] in flat(applied.stderr)
    assert json.loads(repo.mc("plan", "--json").stdout)["trust"]["verdict"] == "refused"


def test_serve_trust_anew_applies_the_untrusted_head_and_records_it(
    repo: GovRepo, mallory: Signer
) -> None:
    takeover = _takeover(repo, mallory)
    _lose_state(repo)

    with served(repo.root, "--trust-anew") as serve:
        serve.wait_reconciled(takeover)

    assert repo.applied_digest("Mission/governed") == repo.digest("Mission/governed")
    [event] = repo.events("trust.anew")
    assert event.data["trusted"] == ["mallory"] and event.commit == takeover
    assert "trusting the approvers HEAD declares (mallory)" in event.data["reason"]
    assert "history alone would refuse it" in event.data["reason"]


def test_an_orphan_history_merged_beside_the_real_one_is_refused(
    repo: GovRepo, mallory: Signer
) -> None:
    """Mallory starts an orphan branch declaring herself the only approver, then merges the
    real history into it as the *second* parent: the merge is a fast-forward of main (no force
    push), but its first-parent line starts at her orphan. With the state lost, that is not a
    first approver set to trust."""
    root = repo.commit("mission")
    repo.apply()
    repo.git("checkout", "-q", "-b", "feature")  # a legit merged branch changing mission.yaml
    repo.mission(description="reviewed on a branch")
    repo.commit("describe it")
    repo.git("checkout", "-q", "main")
    repo.git("merge", "-q", "--no-ff", "-m", "merge feature", "feature")
    assert repo.mc_json("trust")["head_follows"] is True
    main = repo.head()

    repo.git("checkout", "-q", "--orphan", "evil")
    repo.mission(approvers=[mallory])
    repo.agent("summarizer", version="evil")
    orphan = repo.commit("a history of my own")
    repo.git("merge", "-q", "--allow-unrelated-histories", "-s", "ours", "-m", "merge", "main")
    repo.git("checkout", "-q", "main")
    repo.git("merge", "-q", "--ff-only", "evil")  # main only moves forward
    _lose_state(repo)

    applied = repo.mc("apply", "--auto-approve", "--no-wait")

    assert applied.returncode == 1, applied.stdout
    said = flat(applied.stderr)
    assert f"does not descend from commit {orphan[:12]}" in said
    assert "--trust-anew" in said and "Traceback" not in applied.stderr
    _applied_nothing(repo)
    body = repo.mc_json("trust")
    assert body["head_follows"] is False and body["root"] == orphan
    assert body["foreign"] in {root, main, repo.git("rev-parse", "feature")}


def test_an_approver_removed_with_approval_is_not_restored_by_the_old_approvals(
    repo: GovRepo, alice: Signer, bob: Signer, dave: Signer
) -> None:
    """dave was added (alice and bob approved), then removed (approved again); an unsigned
    commit restores the content that added him byte for byte. With the state lost, the old
    approvals of that content approved the first change, not this one."""
    repo.commit("mission")
    repo.mission(approvers=[alice, bob, dave])
    repo.commit("add dave")
    repo.approve(alice, "Mission/governed", name="ok-alice-add")
    repo.approve(bob, "Mission/governed", name="ok-bob-add")
    repo.mission(approvers=[alice, bob])
    removed = repo.commit("remove dave")
    repo.approve(alice, "Mission/governed", name="ok-alice-remove")
    repo.approve(bob, "Mission/governed", name="ok-bob-remove")
    repo.mission(approvers=[alice, bob, dave])
    back = repo.commit("dave is back, signed by nobody")

    applied = repo.mc("apply", "--auto-approve", "--no-wait")

    assert applied.returncode == 1, applied.stdout
    said = flat(applied.stderr)
    assert f"commit {back[:12]} set the approvers to (alice, bob, dave)" in said
    assert f"approvals of it older than commit {removed[:12]}" in said
    _applied_nothing(repo)

    repo.approve(alice, "Mission/governed", name="ok-alice-back")  # approved anew: it counts
    repo.approve(bob, "Mission/governed", name="ok-bob-back")
    body = repo.mc_json("trust")
    assert body["head_follows"] is True
    assert body["links"][-1]["approved_by"] == ["alice", "bob"]


def test_a_branch_from_before_the_first_approvers_merged_later_still_follows(
    repo: GovRepo,
) -> None:
    """A branch started while mission.yaml declared no approvers, merged after they were
    declared, is no rival first set: with the state lost, the chain still follows."""
    repo.mission(approvers=[])
    start = repo.commit("mc init")
    repo.git("checkout", "-q", "-b", "early", start)
    repo.mission(approvers=[], description="written before anyone approved")
    repo.commit("describe it")
    repo.git("checkout", "-q", "main")
    repo.mission()  # alice and bob
    root = repo.commit("declare the approvers")
    repo.git("merge", "-q", "-s", "ours", "-m", "merge early", "early")

    body = repo.mc_json("trust")

    assert body["head_follows"] is True and body["foreign"] is None
    assert body["root"] == root
    assert repo.mc("apply", "--auto-approve", "--no-wait").returncode == 0
