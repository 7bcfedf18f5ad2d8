"""The forgery suite, from one table: each row is something a commit nobody approved (or local
files) tries, carried out through the real `mc apply`, with real signed commits. Every attack
fails — what it aimed at is not applied, or the work it aimed at does not run — and the reason
is an event in the state.

Other attacks of the same class have tables of their own beside this one: repo-local git
configuration (test_repo_config_cannot_steer_git.py), approvals that do not count
(test_approvals_rejected.py), the sandbox turned off (test_sandbox_approvals.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from governance_harness import GovRepo, Signer
from helpers.serve import served

from reconciler.governance.policy import AGENT_BUDGET, MISSION_SETTINGS


@dataclass(frozen=True)
class Keys:
    alice: Signer
    bob: Signer
    mallory: Signer


@dataclass(frozen=True)
class Attack:
    """One forgery: `forge` commits it (after `waiting` is set up: agent v2 pending)."""

    name: str
    forge: Callable[[GovRepo, Keys, Path], None]
    held: str  # the target that must not be applied at its forged content
    event: str  # the event kind that records why
    says: str  # a phrase of that event's reason or rule


def reroute_the_bot(repo: GovRepo, keys: Keys, tmp: Path) -> None:
    repo.mission(
        telegram={
            "chat_id": -100777,
            "token": {"from_env": "AWS_SECRET_ACCESS_KEY"},
            "base_url": "http://127.0.0.1:9/bot",
        }
    )
    repo.commit("notifications")


def raise_the_budget(repo: GovRepo, keys: Keys, tmp: Path) -> None:
    repo.mission(budget={"daily_usd": 1})  # setting a cap where there was none: LOW
    repo.commit("a cap")
    assert repo.mc("apply", "--auto-approve").returncode == 0
    assert "Mission/governed" not in repo.pending()
    repo.mission(budget={"daily_usd": 1000})
    repo.commit("more room")


def raise_drop_limits(repo: GovRepo, keys: Keys, tmp: Path) -> None:
    repo.mission(drops={"max_run": "10Gi", "max_file": "10Gi"})
    repo.commit("bigger drops")


def stretch_approval_ttl(repo: GovRepo, keys: Keys, tmp: Path) -> None:
    repo.mission(policy={"approval_ttl": "300d"})
    repo.commit("approvals last longer")


def move_agents_elsewhere(repo: GovRepo, keys: Keys, tmp: Path) -> None:
    repo.mission(executor={"kind": "ray", "address": "ray://127.0.0.1:10001"})
    repo.commit("scale out")


def rule_with_the_task_it_covers(repo: GovRepo, keys: Keys, tmp: Path) -> None:
    rule = {"name": "deploys", "match": {"kind": ["Task"], "name": ["deploy-*"]}, "decide": "RED"}
    repo.mission(policy={"rules": [rule]})
    repo.task("deploy-site", agent="summarizer")
    repo.commit("deploys need two approvers; deploy the site")


def rule_that_waives_itself(repo: GovRepo, keys: Keys, tmp: Path) -> None:
    rule = {"name": "agents-are-fine", "match": {"kind": ["Agent"]}, "decide": "LOW"}
    repo.mission(policy={"rules": [rule]})
    repo.commit("trust every agent change")


def relabel_into_a_lowering_rule(repo: GovRepo, keys: Keys, tmp: Path) -> None:
    """The approvers let agents labelled `tier: sandbox` change freely; a commit gives the
    summarizer that label while it changes the agent's command (v3)."""
    match = {"kind": ["Agent"], "labels": {"tier": "sandbox"}}
    free = {"name": "sandbox-agents-free", "match": match, "decide": "LOW"}
    repo.mission(policy={"rules": [free]})
    repo.commit("sandbox agents may change freely")
    repo.approve(keys.alice, "Mission/governed", name="ok-free-sandbox")
    assert repo.mc("apply", "--auto-approve").returncode == 0
    assert "Mission/governed" not in repo.pending()
    repo.agent("summarizer", version="v3")
    repo.replace(
        "agents/summarizer.yaml", "name: summarizer", "name: summarizer\n  labels: {tier: sandbox}"
    )
    repo.commit("relabel the summarizer and change its command")


def future_dated_approval(repo: GovRepo, keys: Keys, tmp: Path) -> None:
    repo.approval_file("ok-alice-later", "Agent/summarizer")
    repo.git("add", "-A")
    env = {**keys.alice.env(), "GIT_COMMITTER_DATE": "2099-01-01T00:00:00Z"}
    repo.git(*keys.alice.git_args(), "commit", "-S", "-q", "-m", "approve, forever", env=env)


def restore_approved_content(repo: GovRepo, keys: Keys, tmp: Path) -> None:
    """alice approves v2 (applied), then v3 (applied); an unsigned commit restores v2 byte for
    byte, hoping her first approval still counts: it was of v2 as it was then."""
    v2 = repo.read("agents/summarizer.yaml")
    repo.approve(keys.alice, "Agent/summarizer", name="ok-v2")
    assert repo.mc("apply", "--auto-approve").returncode == 0
    repo.agent("summarizer", version="v3")
    repo.commit("v3")
    repo.approve(keys.alice, "Agent/summarizer", name="ok-v3")
    assert repo.mc("apply", "--auto-approve").returncode == 0
    assert repo.pending() == []
    repo.write("agents/summarizer.yaml", v2)
    repo.commit("back to v2")


def replace_a_signed_approval(repo: GovRepo, keys: Keys, tmp: Path) -> None:
    """alice signed an approval of other content; `git replace` swaps that blob for one
    naming the pending digest (what `git cat-file` would show, unless replacements are off)."""
    path = repo.approve(keys.alice, "Agent/summarizer", digest="sha256:" + "0" * 64)
    real = repo.git("rev-parse", f"HEAD:{path}")
    forged = tmp / "forged.yaml"
    forged.write_text(repo.read(path).replace("0" * 64, repo.digest("Agent/summarizer")[7:]))
    fake = repo.git("hash-object", "-w", str(forged))
    repo.git("replace", real, fake)


ATTACKS = [
    Attack("telegram re-routed", reroute_the_bot, "Mission/governed", "plan.needs_approval",
           MISSION_SETTINGS),
    Attack("budget raised", raise_the_budget, "Mission/governed", "plan.needs_approval",
           MISSION_SETTINGS),
    Attack("drop limits raised", raise_drop_limits, "Mission/governed", "plan.needs_approval",
           MISSION_SETTINGS),
    Attack("approval TTL stretched", stretch_approval_ttl, "Mission/governed",
           "plan.needs_approval", MISSION_SETTINGS),
    Attack("executor moved", move_agents_elsewhere, "Mission/governed", "plan.needs_approval",
           MISSION_SETTINGS),
    Attack("a rule arrives with the task it covers", rule_with_the_task_it_covers,
           "Task/deploy-site", "plan.needs_approval", "rule 'deploys'"),
    Attack("a rule waives its own approval", rule_that_waives_itself, "Agent/summarizer",
           "plan.needs_approval", "default: agent command/env"),
    Attack("a commit relabels an agent into a lowering rule", relabel_into_a_lowering_rule,
           "Agent/summarizer", "plan.needs_approval", "default: agent command/env"),
    Attack("approval dated 2099", future_dated_approval, "Agent/summarizer", "approval.rejected",
           "is dated in the future"),
    Attack("approved content restored", restore_approved_content, "Agent/summarizer",
           "approval.rejected", "changed after this approval was first seen"),
    Attack("replace ref swaps a signed approval", replace_a_signed_approval, "Agent/summarizer",
           "approval.rejected", "approves digest sha256:0000000000"),
]  # fmt: skip


@pytest.mark.parametrize("attack", ATTACKS, ids=[a.name for a in ATTACKS])
def test_forgery_fails_and_says_why(
    attack: Attack,
    waiting: GovRepo,
    alice: Signer,
    bob: Signer,
    mallory: Signer,
    tmp_path: Path,
) -> None:
    attack.forge(waiting, Keys(alice, bob, mallory), tmp_path)
    forged = waiting.digest(attack.held)

    applied = waiting.mc("apply", "--auto-approve")

    assert applied.returncode == 0, applied.stderr
    assert waiting.applied_digest(attack.held) != forged
    assert attack.held in waiting.pending()
    reasons = [
        " ".join(str(e.data.get(k)) for k in ("reason", "rule"))
        for e in waiting.events(attack.event)
    ]
    assert any(attack.says in r for r in reasons), reasons


def test_a_mission_change_that_only_slows_work_needs_nobody(waiting: GovRepo) -> None:
    """Pausing, describing or lowering a budget stays LOW: operators never wait to stop."""
    waiting.mission(mode="paused", description="holding for the audit", budget={"daily_usd": 5})
    waiting.commit("pause and cap")
    assert waiting.mc("apply", "--auto-approve").returncode == 0
    assert waiting.applied_digest("Mission/governed") == waiting.digest("Mission/governed")

    waiting.mission(mode="paused", budget={"daily_usd": 2})  # lower again
    waiting.commit("tighter")
    assert waiting.mc("apply", "--auto-approve").returncode == 0
    assert waiting.applied_digest("Mission/governed") == waiting.digest("Mission/governed")

    waiting.mission(mode="paused")  # removing the cap raises it: guarded
    waiting.commit("no cap")
    assert waiting.mc("apply", "--auto-approve").returncode == 0
    assert "Mission/governed" in waiting.pending()


def test_a_dispatch_rule_gates_the_task_that_arrives_with_it(repo: GovRepo) -> None:
    repo.commit("mission")
    repo.apply()
    rule = {"name": "gate-deploys", "match": {"action": ["dispatch"], "name": ["deploy-*"]},
            "decide": "HIGH"}  # fmt: skip
    repo.mission(policy={"rules": [rule]})
    repo.task("deploy-site", agent="summarizer")
    repo.commit("a dispatch rule and the task it gates, unsigned")

    assert repo.mc("apply", "--auto-approve").returncode == 0

    assert "Mission/governed" in repo.pending()  # the rule itself waits for approval ...
    row = repo.task_row("deploy-site")  # ... and already holds the task it came with
    assert row.state == "NEEDS_APPROVAL"
    assert repo.runs_of("deploy-site") == 0
    moved = [e.data for e in repo.events("task.transition", "Task/deploy-site")]
    assert [(m["from"], m["to"]) for m in moved] == [("INBOX", "NEEDS_APPROVAL")]


def test_a_review_approval_signed_before_the_result_does_not_complete_it(
    repo: GovRepo, alice: Signer
) -> None:
    repo.commit("mission")
    repo.apply()
    repo.task("draft", agent="summarizer", approval="after")
    repo.commit("a reviewed task")
    repo.approve(alice, "Task/draft")  # signed before the task ever ran

    assert repo.mc("apply", "--auto-approve").returncode == 0

    assert repo.task_row("draft").state == "REVIEW"
    assert repo.runs_of("draft") == 1
    repo.approve(alice, "Task/draft", name="ok-alice-after-review")
    assert repo.mc("apply", "--auto-approve").returncode == 0
    assert repo.task_row("draft").state == "DONE"


def test_removing_the_gate_of_a_waiting_task_lets_it_run(repo: GovRepo) -> None:
    repo.task("publish", agent="summarizer", approval="before")
    repo.commit("a gated task")
    assert repo.mc("apply", "--auto-approve").returncode == 0
    assert repo.task_row("publish").state == "NEEDS_APPROVAL"

    repo.task("publish", agent="summarizer")
    repo.commit("no approval needed after all")
    assert repo.mc("apply", "--auto-approve").returncode == 0

    assert repo.task_row("publish").state == "DONE"
    moved = [e.data for e in repo.events("task.transition", "Task/publish")]
    assert any(d.get("reason") == "approval no longer needed" for d in moved), moved


def test_serve_keeps_the_bot_where_the_approvers_put_it(
    waiting: GovRepo, alice: Signer, bob: Signer, mallory: Signer
) -> None:
    """Under `mc serve`, the unsigned re-route waits for approval; the loop stays up and the
    applied mission (what the bot is built from after a restart) keeps no telegram block."""
    with served(waiting.root) as serve:
        reroute_the_bot(waiting, Keys(alice, bob, mallory), waiting.root)
        facts = serve.wait_reconciled(waiting.head())
        assert facts.get("last_error") in (None, ""), facts
        assert serve.healthy()
    assert "Mission/governed" in waiting.pending()
    with waiting.state() as state:
        mission = state.reader.resource("Mission", "governed")
    assert mission is not None and mission.spec.get("telegram") is None
    rules = [e.data["rule"] for e in waiting.events("plan.needs_approval", "Mission/governed")]
    assert MISSION_SETTINGS in rules


def test_an_agent_budget_raised_or_removed_waits_lowered_does_not(repo: GovRepo) -> None:
    repo.agent("summarizer", budget={"daily_usd": 1, "per_run_usd": 0.1})
    repo.commit("capped agent")
    assert repo.mc("apply", "--auto-approve").returncode == 0

    repo.agent("summarizer", budget={"daily_usd": 0.5, "per_run_usd": 0.05})
    repo.commit("tighter")
    assert repo.mc("apply", "--auto-approve").returncode == 0
    assert repo.applied_digest("Agent/summarizer") == repo.digest("Agent/summarizer")

    for budget in ({"daily_usd": 1000, "per_run_usd": 0.05}, {"daily_usd": 0.5}):
        repo.agent("summarizer", budget=budget)
        repo.commit(f"agent budget {budget}")
        assert repo.mc("apply", "--auto-approve").returncode == 0
        assert "Agent/summarizer" in repo.pending(), budget
        rules = [e.data["rule"] for e in repo.events("plan.needs_approval", "Agent/summarizer")]
        assert rules and rules[-1] == AGENT_BUDGET


def test_a_review_denied_then_retried_can_be_approved_in_its_new_round(
    repo: GovRepo, alice: Signer
) -> None:
    """A deny is final for its round; `mc retry` opens a new one, where alice's approval of the
    same content counts (it was rejected as 'already decided' before)."""
    repo.task("draft", agent="summarizer", approval="after")
    repo.commit("a reviewed task")
    assert repo.mc("apply", "--auto-approve").returncode == 0
    assert repo.task_row("draft").state == "REVIEW"
    repo.approve(alice, "Task/draft", name="deny-draft", deny=True)
    assert repo.mc("apply", "--auto-approve").returncode == 0
    assert repo.task_row("draft").state == "FAILED"

    retried = repo.mc("retry", "draft")
    assert retried.returncode == 0, retried.stderr
    assert repo.mc("apply", "--auto-approve").returncode == 0
    assert repo.task_row("draft").state == "REVIEW"
    path = repo.approve(alice, "Task/draft", name="ok-draft-round-2")
    assert repo.mc("apply", "--auto-approve").returncode == 0

    assert repo.row_for(path).status == "accepted"
    assert repo.task_row("draft").state == "DONE"


def test_red_with_a_single_approver_is_unapprovable_and_says_why(
    tmp_path: Path, alice: Signer, bob: Signer
) -> None:
    repo = GovRepo(tmp_path / "solo", [alice])
    repo.agent("summarizer")
    repo.commit("mission")
    assert repo.mc("apply", "--auto-approve").returncode == 0
    repo.mission(approvers=[alice, bob])
    repo.commit("add bob")

    action = repo.action("Mission/governed")

    assert (action.decision.risk, action.status) == ("RED", "unapprovable")
    assert action.note is not None and "declares only 1" in action.note
