"""Bot commands: /pause and /resume (an override the loop honours and `mc status` shows), the
read-outs, /quarantine, and tasks gated before dispatch decided with /approve and /deny."""

from __future__ import annotations

import time

from bot_api_standin import BotApiStandIn
from tg_harness import ALICE, BOB, STRANGER, TgRepo, served, wait_until


def test_pause_resume_and_read_commands(repo: TgRepo, standin: BotApiStandIn) -> None:
    with served(repo, standin) as s:
        wait_until(lambda: s.applied_digest("Agent/writer"), what="the first apply")

        s.say(STRANGER, "/pause")
        assert "not a declared approver" in s.reply("Refused").text
        refused = wait_until(lambda: s.events("telegram.refused"), what="telegram.refused")
        assert refused[0].data["action"] == "/pause" and refused[0].data["user_id"] == 999
        assert "mode" not in s.read(lambda r: r.overrides())

        s.say(ALICE, "/pause release freeze")
        assert "release freeze" in s.reply("⏸").text
        value, actor, reason, _ = s.read(lambda r: r.overrides())["mode"]
        assert (value, actor, reason) == ("paused", "telegram:alice", "release freeze")
        s.say(BOB, "/status")
        assert "MODE OVERRIDDEN to PAUSED by telegram:alice" in s.reply("Mission ops").text

        repo.task("later", agent="writer")
        s.commit("A task while paused")
        wait_until(lambda: s.task_state("later"), what="the task applied")
        time.sleep(0.8)  # the loop had every chance to dispatch it
        assert s.task_state("later") not in ("IN_PROGRESS", "DONE")
        assert s.read(lambda r: r.runs(task="later")) == []

        s.say(ALICE, "/resume")
        assert "applies again" in s.reply("▶").text
        assert "mode" not in s.read(lambda r: r.overrides())
        wait_until(lambda: s.task_state("later") == "DONE", what="the task done after /resume")
        kinds = [e.kind for e in s.events("override.set") + s.events("override.lifted")]
        assert kinds == ["override.set", "override.lifted"]

        s.say(ALICE, "/spend")
        assert "writer: $0.01 · $0.01" in s.reply("Spend by agent").text
        s.say(ALICE, "/pending")
        s.reply("Nothing is waiting for approval")
        s.say(BOB, "/quarantine writer looping")
        assert "quarantined" in s.reply("🚫").text
        status_of = s.read(lambda r: r.agent_overrides())
        assert status_of["writer"] == ("quarantined", "looping")


def test_gated_task_request_approved_and_denied_by_command(
    repo: TgRepo, standin: BotApiStandIn
) -> None:
    repo.task(
        "deploy",
        agent="writer",
        risk="HIGH",
        prompt="Ship   the release\nto production",
        budget={"estimated_usd": 0.2},
    )
    repo.task("drop-db", agent="writer", approval="before", prompt="Drop the old database")
    repo.commit("Two gated tasks")
    with served(repo, standin) as s:
        wait_until(lambda: s.task_state("deploy") == "NEEDS_APPROVAL", what="deploy gated")
        deploy = s.request_for("Task/deploy")
        for shown in (
            "dispatch Task/deploy",
            "title: Task deploy",
            "agent: writer",
            "prompt: Ship the release to production",
            "Estimated cost: $0.2 (estimated)",
        ):
            assert shown in deploy.text
        rid = deploy.buttons[0][1].split(":", 1)[1]

        s.say(BOB, "/pending")
        assert rid in s.reply("waiting for approval:").text
        s.say(BOB, f"/approve {rid} looks fine")
        assert "approved by bob" in s.reply("✅").text
        wait_until(lambda: s.task_state("deploy") == "DONE", what="deploy done")
        row = next(r for r in s.approvals("telegram") if r.target == "Task/deploy")
        assert row.evidence["comment"] == "looks fine" and row.approver == "bob"

        drop = s.request_for("Task/drop-db")
        rid = drop.buttons[1][1].split(":", 1)[1]
        s.say(ALICE, f"/deny {rid}")
        s.reply("Usage: /deny ID REASON")
        s.say(ALICE, f"/deny {rid} not during the freeze")
        assert "denied by alice" in s.reply("🚫 denied").text
        wait_until(lambda: any("denied by alice" in t for t in s.edits_of(drop)))
        denied = [r for r in s.approvals("telegram") if r.target == "Task/drop-db"]
        assert [(r.decision, r.approver) for r in denied] == [("deny", "alice")]
        assert s.read(lambda r: r.runs(task="drop-db")) == []
