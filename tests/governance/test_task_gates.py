"""Approval gates on work: `approval: before` holds dispatch, `approval: after` holds completion,
and a dispatch policy rule gates an agent's tasks — each released by a signed approval."""

from __future__ import annotations

import time

from governance_harness import GovRepo, Signer


def test_approval_before_holds_dispatch_until_a_signed_approval(
    repo: GovRepo, alice: Signer
) -> None:
    repo.task("publish", agent="summarizer", approval="before")
    repo.commit("mission with a gated task")
    repo.apply(drive=True)

    held = repo.task_row("publish")
    assert held.state == "NEEDS_APPROVAL"
    assert held.reason == "approval required before dispatch"
    assert repo.runs_of("publish") == 0

    repo.approve(None, "Task/publish", name="unsigned-publish")  # does not release it
    repo.apply(drive=True)
    assert repo.task_row("publish").state == "NEEDS_APPROVAL"
    assert repo.runs_of("publish") == 0

    repo.approve(alice, "Task/publish")
    repo.apply(drive=True)

    done = repo.task_row("publish")
    assert (done.state, done.output) == ("DONE", "did publish")
    assert repo.runs_of("publish") == 1


def test_approval_after_holds_the_result_in_review(repo: GovRepo, bob: Signer) -> None:
    repo.task("draft", agent="summarizer", approval="after")
    repo.commit("mission with a reviewed task")
    repo.apply(drive=True)

    review = repo.task_row("draft")
    assert review.state == "REVIEW"
    assert repo.runs_of("draft") == 1

    repo.approve(bob, "Task/draft")  # made after the task entered REVIEW, at once
    repo.apply(drive=True)

    assert repo.task_row("draft").state == "DONE"
    assert repo.runs_of("draft") == 1  # approving a review does not run it again


def test_dispatch_rule_gates_the_tasks_of_one_agent(repo: GovRepo, alice: Signer) -> None:
    repo.mission(
        policy={
            "rules": [
                {
                    "name": "gate-risky",
                    "match": {"action": ["dispatch"], "agent": ["risky"]},
                    "decide": "HIGH",
                }
            ]
        }
    )
    repo.agent("risky")
    repo.task("safe-work", agent="summarizer")
    repo.task("risky-work", agent="risky")
    repo.commit("mission with a dispatch rule")
    repo.apply(drive=True)

    assert repo.task_row("safe-work").state == "DONE"
    assert repo.task_row("risky-work").state == "NEEDS_APPROVAL"
    assert repo.runs_of("risky-work") == 0
    explained = repo.mc("explain", "Task/risky-work")
    assert explained.returncode == 0, explained.stderr
    assert "dispatch: risk HIGH by rule 'gate-risky'" in explained.stdout

    repo.approve(alice, "Task/risky-work")
    repo.apply(drive=True)
    assert repo.task_row("risky-work").state == "DONE"


def test_denied_task_is_not_run(repo: GovRepo, bob: Signer) -> None:
    repo.task("publish", agent="summarizer", approval="before")
    repo.commit("mission with a gated task")
    repo.apply(drive=True)

    repo.approve(bob, "Task/publish", deny=True)
    repo.apply(drive=True)

    denied = repo.task_row("publish")
    assert denied.state == "FAILED" and "denied" in (denied.reason or "")
    assert repo.runs_of("publish") == 0


def test_review_needs_an_approval_made_after_the_run(repo: GovRepo, bob: Signer) -> None:
    repo.task("draft", agent="summarizer", approval="after")
    repo.commit("mission with a reviewed task")
    repo.apply()  # recorded, not run yet
    repo.approve(bob, "Task/draft", name="bob-1-early")
    time.sleep(1.1)  # commit times are whole seconds: the run starts in a later one
    repo.apply(drive=True)

    assert repo.task_row("draft").state == "REVIEW"  # the early approval saw no result

    repo.approve(bob, "Task/draft", name="bob-2-after-review")
    repo.apply(drive=True)
    assert repo.task_row("draft").state == "DONE"
