"""Approval requests in Telegram: posted once, decided by declared approvers only, counted with
signed git approvals for dual control, refused when stale, expired or already decided."""

from __future__ import annotations

import time
from datetime import timedelta

from bot_api_standin import BotApiStandIn
from tg_harness import ALICE, BOB, CHAT, STRANGER, TgRepo, served, wait_until


def test_request_posted_once_stranger_refused_approver_applies(
    repo: TgRepo, standin: BotApiStandIn
) -> None:
    with served(repo, standin) as s:
        first = wait_until(lambda: s.applied_digest("Agent/writer"), what="the first apply")
        repo.agent("writer", "v2")  # a new command: HIGH, one approval
        s.commit("writer v2")
        pending = wait_until(lambda: s.pending("Agent/writer"), what="Agent/writer pending")
        assert pending.risk == "HIGH" and pending.digest != first

        request = s.request_for("Agent/writer")
        text = request.text
        assert "HIGH" in text and "update Agent/writer" in text
        assert pending.digest[:19] in text
        assert "spec.command" in text and "v1" in text and "v2" in text
        assert "Estimated cost:" in text and "still needed: 1" in text
        assert [label for label, _ in request.buttons] == ["✅ Approve", "🚫 Deny"]
        assert request.params["chat_id"] == CHAT

        time.sleep(0.6)  # several syncs later: still one request
        assert len(s.requests_for("Agent/writer")) == 1

        press = s.press(STRANGER, request)
        assert "not a declared approver" in s.answer_to(press)
        refused = wait_until(lambda: s.events("telegram.refused"), what="telegram.refused")
        assert refused[0].data["user_id"] == 999 and refused[0].subject == "Agent/writer"
        assert s.pending("Agent/writer") is not None

        press = s.press(ALICE, request)
        assert "approved by alice" in s.answer_to(press)
        wait_until(
            lambda: s.applied_digest("Agent/writer") == pending.digest, what="the change applied"
        )
        row = next(r for r in s.approvals("telegram"))
        assert (row.approver, row.decision, row.status) == ("alice", "approve", "accepted")
        assert row.digest == pending.digest
        assert row.evidence["user_id"] == 111 and row.evidence["chat_id"] == CHAT
        assert row.evidence["message_id"] == request.message_id
        assert row.evidence["digest_shown"] == pending.digest
        wait_until(lambda: any("approved by alice" in t for t in s.edits_of(request)))

        # Telegram delivering the same press again changes nothing
        answers = len(standin.calls_of("answerCallbackQuery"))
        events = len(s.events("approval.accepted"))
        standin.push(press)
        s.say(ALICE, "/help")
        s.reply("Mission Control bot")
        assert len(standin.calls_of("answerCallbackQuery")) == answers
        assert len(s.approvals("telegram")) == 1
        assert len(s.events("approval.accepted")) == events

        # a new press on the settled request is refused with the reason
        again = s.press(ALICE, request)
        assert "no longer waiting" in s.answer_to(again)
        assert len(s.approvals("telegram")) == 1


def test_dual_control_counts_a_signed_commit_and_a_telegram_approval(
    repo: TgRepo, standin: BotApiStandIn
) -> None:
    with served(repo, standin) as s:
        wait_until(lambda: s.applied_digest("Mission/ops"), what="the first apply")
        carol = {"name": "carol", "ssh_keys": [repo.keys["carol"].public], "telegram_ids": [333]}
        repo.mission([carol])  # changing the approver set is RED: two distinct approvers
        s.commit("Add carol as an approver")
        pending = wait_until(lambda: s.pending("Mission/ops"), what="Mission/ops pending")
        assert pending.risk == "RED"
        request = s.request_for("Mission/ops")
        assert "RED" in request.text and "still needed: 2" in request.text
        assert "spec.approvers" in request.text

        repo.approval("alice-ok-mission", "Mission/ops", pending.digest, repo.keys["alice"])
        s.notice()
        wait_until(
            lambda: any(
                r.approver == "alice" for r in s.approvals("git") if r.status == "accepted"
            ),
            what="alice's signed approval accepted",
        )
        wait_until(lambda: any("1 of 2" in t for t in s.edits_of(request)), what="votes shown")
        assert s.pending("Mission/ops") is not None  # one approver is not enough

        twice = s.press(ALICE, request)  # alice again, now in Telegram: counts once
        assert "already decided" in s.answer_to(twice)
        assert s.pending("Mission/ops") is not None

        press = s.press(BOB, request)
        assert "approved by bob" in s.answer_to(press)
        wait_until(lambda: s.applied_digest("Mission/ops") == pending.digest, what="the RED change")
        channels = {(r.approver, r.channel) for r in s.approvals() if r.status == "accepted"}
        assert {("alice", "git"), ("bob", "telegram")} <= channels


def test_stale_digest_and_expired_request_are_refused(repo: TgRepo, standin: BotApiStandIn) -> None:
    with served(repo, standin) as s:
        wait_until(lambda: s.applied_digest("Agent/writer"), what="the first apply")
        repo.agent("writer", "v2")
        s.commit("writer v2")
        v2 = wait_until(lambda: s.pending("Agent/writer"), what="v2 pending")
        old = s.request_for("Agent/writer", v2.digest)

        repo.agent("writer", "v3")  # the target changes under the request
        s.commit("writer v3")
        v3 = wait_until(
            lambda: (p := s.pending("Agent/writer")) and p.digest != v2.digest and p,
            what="v3 pending",
        )
        new = s.request_for("Agent/writer", v3.digest)
        wait_until(lambda: any("superseded" in t for t in s.edits_of(old)), what="old closed")

        stale = s.press(ALICE, old)
        assert "stale" in s.answer_to(stale)
        assert s.approvals("telegram") == []

        s.clock.offset = timedelta(hours=1, seconds=5)  # older than approval_ttl (1h)
        expired = s.press(ALICE, new)
        assert "expired" in s.answer_to(expired)
        assert s.approvals("telegram") == []
        fresh = wait_until(
            lambda: [
                r
                for r in s.requests_for("Agent/writer")
                if r.message_id != new.message_id
                and v3.digest[:19] in r.text
                and r.message_id != old.message_id
            ],
            what="a fresh request",
        )[-1]
        s.clock.offset = timedelta()

        press = s.press(BOB, fresh)
        assert "approved by bob" in s.answer_to(press)
        wait_until(lambda: s.applied_digest("Agent/writer") == v3.digest, what="v3 applied")


def test_a_restarted_bot_remembers_what_it_posted(repo: TgRepo, standin: BotApiStandIn) -> None:
    with served(repo, standin) as s:
        wait_until(lambda: s.applied_digest("Agent/writer"), what="the first apply")
        repo.agent("writer", "v2")
        s.commit("writer v2")
        pending = wait_until(lambda: s.pending("Agent/writer"), what="Agent/writer pending")
        request = s.request_for("Agent/writer")
        marker = wait_until(lambda: s.events("telegram.posted"), what="the posted marker")
        assert marker[0].data["message_id"] == request.message_id

        s.restart_bot()
        time.sleep(0.6)  # several syncs of the new bot
        assert len(s.requests_for("Agent/writer")) == 1

        press = s.press(ALICE, request)  # the button of the message posted before the restart
        assert "approved by alice" in s.answer_to(press)
        wait_until(lambda: s.applied_digest("Agent/writer") == pending.digest, what="applied")
