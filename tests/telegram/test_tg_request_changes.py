"""Human rework from Telegram: a task in REVIEW gets a Request changes button; a reply to the
request (or /changes ID FEEDBACK) sends the work back to its agent with the words as feedback,
recorded like any decision; a task not in review offers no such button and refuses it."""

from __future__ import annotations

import time
from typing import Any

from bot_api_standin import BOT_USER, BotApiStandIn, Call, chat
from tg_harness import ALICE, CHAT, STRANGER, TgRepo, served, wait_until


def reply_update(text: str, sender: dict[str, Any], to: Call) -> dict[str, Any]:
    """A text message replying to a message the bot sent."""
    return {
        "message": {
            "message_id": int(time.monotonic() * 1000) % 1_000_000,
            "date": int(time.time()),
            "chat": chat(CHAT),
            "from": sender,
            "text": text,
            "reply_to_message": {
                "message_id": to.message_id,
                "date": int(time.time()),
                "chat": chat(int(to.params["chat_id"])),
                "from": BOT_USER,
                "text": to.text,
            },
        }
    }


def test_request_changes_by_reply_sends_the_task_back_with_feedback(
    repo: TgRepo, standin: BotApiStandIn
) -> None:
    repo.task("draft", agent="writer", approval="after", max_rework=2)
    repo.commit("a task reviewed after the work")
    with served(repo, standin) as s:
        wait_until(lambda: s.task_state("draft") == "REVIEW", what="draft in REVIEW")
        request = s.request_for("Task/draft")
        labels = [label for label, _ in request.buttons]
        assert labels == ["✅ Approve", "🚫 Deny", "✏️ Request changes"]

        press = s.press(ALICE, request, "changes")
        assert "Reply to this request message" in s.answer_to(press)
        assert s.task_state("draft") == "REVIEW"  # the button only says how

        standin.push(reply_update("shorter, and cite the source", STRANGER, request))
        s.reply("not a declared approver")
        standin.push(reply_update("shorter, and cite the source", ALICE, request))
        s.reply("changes requested by alice")

        rounds = wait_until(lambda: s.events("task.changes_requested"), what="a rework round")
        assert rounds[0].subject == "Task/draft"
        assert rounds[0].data["feedback"] == "shorter, and cite the source"
        assert (rounds[0].data["by"], rounds[0].data["round"]) == ("alice", 1)
        row = next(r for r in s.approvals("telegram"))
        assert (row.approver, row.decision, row.status) == ("alice", "request_changes", "accepted")
        wait_until(lambda: s.read(lambda r: len(r.runs(task="draft"))) == 2, what="a second run")
        wait_until(lambda: s.task_state("draft") == "REVIEW", what="draft in REVIEW again")
        feedback = s.read(lambda r: r.tasks(["draft"])[0].feedback)
        assert feedback == "shorter, and cite the source"


def test_changes_command_is_refused_for_a_task_gated_before_dispatch(
    repo: TgRepo, standin: BotApiStandIn
) -> None:
    repo.task("deploy", agent="writer", approval="before")
    repo.commit("a task approved before it runs")
    with served(repo, standin) as s:
        request = s.request_for("Task/deploy")
        assert [label for label, _ in request.buttons] == ["✅ Approve", "🚫 Deny"]
        rid = next(d for _, d in request.buttons).partition(":")[2]

        s.say(ALICE, f"/changes {rid} do it differently")

        s.reply("only on a task waiting in REVIEW")
        assert s.task_state("deploy") == "NEEDS_APPROVAL"
        assert not s.events("task.changes_requested")
