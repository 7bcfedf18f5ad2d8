"""Notifications arrive grouped (a burst of 50 failures is one message), and the bot survives
Telegram going down and coming back while reconciliation carries on regardless."""

from __future__ import annotations

import time

from bot_api_standin import BotApiStandIn
from tg_harness import ALICE, FAST, TgRepo, served, wait_until

AGENTS, TASKS = 17, 50  # at most 3 failures per agent: the loop breaker (5 of 10) stays quiet


def test_burst_of_failures_is_one_grouped_notification(
    repo: TgRepo, standin: BotApiStandIn
) -> None:
    for i in range(AGENTS):
        repo.agent(f"f{i}", command=["false"], protocol="stdout", concurrency=3)
    for i in range(TASKS):
        repo.task(f"fail-{i:02d}", agent=f"f{i % AGENTS}")
    repo.commit("Fifty tasks that fail")
    with served(repo, standin) as s:
        wait_until(lambda: len(s.events("task.failed")) == TASKS, timeout=40, what="50 failures")
        note = s.reply("failed after the last retry ×50", timeout=FAST.max_hold_s + 5)
        assert "fail-" in note.text and "(+47 more)" in note.text
        time.sleep(FAST.quiet_s + 0.5)  # anything else would have been sent by now
        notes = [c for c in standin.messages() if c.text.startswith("Mission Control:")]
        assert len(notes) == 1, [c.text for c in notes]
        assert not s.events("agent.quarantined")


def test_telegram_down_at_start_and_mid_run_is_survived(
    repo: TgRepo, standin: BotApiStandIn
) -> None:
    standin.stop()  # unreachable before the bot even starts
    with served(repo, standin, wait_ready=False) as s:
        wait_until(lambda: s.applied_digest("Agent/writer"), what="the first apply")
        assert s.bot is not None and not s.bot.ready.is_set()
        standin.start()  # same port: the bot connects once it is back
        assert s.bot.ready.wait(15), "the bot did not connect after Telegram came back"

        standin.stop()
        repo.agent("writer", "v2")
        s.commit("writer v2 while Telegram is down")
        pending = wait_until(lambda: s.pending("Agent/writer"), what="reconciled regardless")
        time.sleep(1.0)  # the request is being retried meanwhile
        assert not s.requests_for("Agent/writer")

        standin.start()
        request = s.request_for("Agent/writer")
        assert len(s.requests_for("Agent/writer")) == 1
        press = s.press(ALICE, request)
        assert "approved by alice" in s.answer_to(press)
        wait_until(lambda: s.applied_digest("Agent/writer") == pending.digest, what="applied")
        s.say(ALICE, "/status")
        s.reply("Mission ops")
