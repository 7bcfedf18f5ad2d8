"""Sandbox changes through real signed approvals: turning a sandbox off or opening the network
waits for a declared approver, and `mc plan` / `mc status` say loudly who runs unconfined."""

from __future__ import annotations

from governance_harness import GovRepo, Signer
from helpers.mc import flat

AGENT = "Agent/summarizer"


def _tofu(repo: GovRepo) -> None:
    repo.commit("mission")
    first = repo.apply()
    assert first.result is not None and not first.result.pending


def test_an_agent_opting_out_waits_for_a_signed_approval(repo: GovRepo, alice: Signer) -> None:
    _tofu(repo)
    repo.agent("summarizer", sandbox="none")
    repo.commit("run the summarizer unconfined")

    action = repo.action(AGENT)
    assert (action.decision.risk, action.decision.rule, action.status) == (
        "HIGH",
        "default: sandbox turned off",
        "needs_approval",
    )
    shown = repo.mc("plan")
    assert shown.returncode == 0, shown.stderr
    assert "WARNING: Agent/summarizer will run UNCONFINED (sandbox: none on the agent)" in flat(
        shown.stdout
    )
    assert repo.mc_json("plan")["unconfined"] == [{"agent": "summarizer", "by": "agent"}]
    repo.apply()
    assert repo.pending() == [AGENT]
    assert repo.mc_json("status")["sandbox"]["unconfined"] == []  # not applied yet

    repo.approve(alice, AGENT)
    applied = repo.apply()

    assert applied.result is not None
    assert AGENT in [a.key for a in applied.result.applied]
    status = repo.mc("status")
    assert "WARNING: 1 agent(s) run UNCONFINED, without the sandbox: summarizer (sandbox: none" in (
        flat(status.stdout)
    )
    assert repo.mc_json("status")["sandbox"]["unconfined"] == [
        {"agent": "summarizer", "by": "agent"}
    ]


def test_the_mission_opting_out_waits_for_a_signed_approval(repo: GovRepo, bob: Signer) -> None:
    _tofu(repo)
    repo.mission(sandbox="none")
    repo.commit("no sandbox for anyone")

    action = repo.action("Mission/governed")
    assert (action.decision.risk, action.decision.rule) == ("HIGH", "default: sandbox turned off")
    plan = repo.mc_json("plan")
    assert plan["unconfined"] == [{"agent": "summarizer", "by": "mission"}]

    repo.approve(bob, "Mission/governed")
    repo.apply()

    assert repo.applied_digest("Mission/governed") == repo.digest("Mission/governed")
    sandbox = repo.mc_json("status")["sandbox"]
    assert sandbox["mission_sandbox"] == "none"
    assert sandbox["unconfined"] == [{"agent": "summarizer", "by": "mission"}]


def test_host_network_needs_an_approval_and_is_listed(repo: GovRepo, alice: Signer) -> None:
    _tofu(repo)
    repo.agent("summarizer", network="host")
    repo.commit("let the summarizer reach its API")
    action = repo.action(AGENT)
    assert (action.decision.risk, action.decision.rule) == (
        "HIGH",
        "default: agent sandbox/mounts/network/limits",
    )
    assert repo.mc_json("plan")["unconfined"] == []  # still sandboxed

    repo.approve(alice, AGENT)
    repo.apply()

    status = repo.mc("status")
    assert "WARNING: 1 agent(s) can reach the network (network: host): summarizer" in flat(
        status.stdout
    )
    assert repo.mc_json("status")["sandbox"]["network_host"] == ["summarizer"]


def test_an_unsigned_approval_of_an_opt_out_does_not_count(repo: GovRepo) -> None:
    _tofu(repo)
    repo.agent("summarizer", sandbox="none")
    repo.commit("run the summarizer unconfined")
    repo.approve(None, AGENT)  # committed, but signed by nobody
    repo.apply()
    assert repo.pending() == [AGENT]
    assert repo.mc_json("status")["sandbox"]["unconfined"] == []
