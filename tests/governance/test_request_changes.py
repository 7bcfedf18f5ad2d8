"""Human review with rework, through the real CLI and real signed commits: `mc approve
--request-changes` sends a task in REVIEW back to its agent with the words as `feedback` in
task.json, counted against `max_rework`; rounds are kept; `mc retry` requeues a FAILED task;
`mc approve` takes several targets and warns about approvals that will not count."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from governance_harness import GovRepo, Signer, git


def _sign_as(repo: GovRepo, signer: Signer) -> None:
    git(repo.root, "config", "gpg.format", "ssh")
    git(repo.root, "config", "user.signingkey", signer.signing_key)
    git(repo.root, "config", "user.name", signer.name.title())


def _ok(repo: GovRepo, *args: str) -> str:
    done = repo.mc(*args)
    assert done.returncode == 0, f"mc {' '.join(args)}: {done.stderr}"
    return done.stdout + done.stderr


def _task(repo: GovRepo, name: str) -> dict[str, Any]:
    body: dict[str, Any] = repo.mc_json("task", name)
    return body


def _feedback_seen_by(run: dict[str, Any], repo: GovRepo) -> Any:
    """What the agent of this run read as `feedback` in its task.json."""
    runs = repo.mc_json("runs", "review-me")
    workspace = next(r["workspace"] for r in runs if r["id"] == run["id"])
    return json.loads((Path(workspace) / "task.json").read_text())["feedback"]


def _api_rounds(repo: GovRepo) -> Any:
    """The rework rounds /api/tasks/review-me serves (api/work.task_detail)."""
    from api.views import Readers
    from api.work import task_detail
    from reconciler.engine.launch import Paths
    from state.dashboard import DashboardReader

    with repo.state() as state:
        readers = Readers(state.reader, DashboardReader(state.db))
        found = task_detail(readers, Paths(repo.root, repo.mc_dir), "review-me")
    assert found is not None
    return found.rework_rounds


def test_request_changes_round_trip_until_max_rework_then_retry(
    repo: GovRepo, alice: Signer
) -> None:
    repo.task("review-me", agent="summarizer", approval="after", max_rework=1)
    repo.commit("a task reviewed after the work")
    _ok(repo, "apply", "--auto-approve")
    waiting = _task(repo, "review-me")
    assert waiting["state"] == "REVIEW" and waiting["why"]["category"] == "review"
    assert (
        "0/1 given" in waiting["why"]["detail"]
        and "approvers: alice, bob" in waiting["why"]["detail"]
    )
    _sign_as(repo, alice)

    said = _ok(repo, "approve", "Task/review-me", "--request-changes", "use shorter sentences")
    assert "Requested changes on Task/review-me" in said
    _ok(repo, "apply", "--auto-approve")

    body = _task(repo, "review-me")
    assert body["state"] == "REVIEW", body["reason"]
    assert [(r["round"], r["feedback"], r["by"]) for r in body["rework"]] == [
        (1, "use shorter sentences", "alice")
    ]
    assert body["feedback"] == "use shorter sentences"
    assert _api_rounds(repo) == body["rework"]  # the dashboard's task view shows the same
    first, second = sorted(body["runs"], key=lambda r: r["attempt"])
    assert _feedback_seen_by(first, repo) is None
    assert _feedback_seen_by(second, repo) == "use shorter sentences"

    # a second request is beyond max_rework: 1, so the task fails and says why
    _ok(repo, "approve", "Task/review-me", "--request-changes", "and add a title")
    _ok(repo, "apply", "--auto-approve")
    body = _task(repo, "review-me")
    assert body["state"] == "FAILED"
    assert "rework limit (1) reached" in body["reason"] and "and add a title" in body["reason"]
    assert body["why"]["category"] == "failed" and "mc retry review-me" in body["why"]["detail"]

    # `mc retry` requeues the FAILED task (an event), and the work runs again
    assert "Requeued review-me" in _ok(repo, "retry", "review-me")
    assert [e.subject for e in repo.events("retry.requested")] == ["Task/review-me"]
    _ok(repo, "apply", "--auto-approve")
    assert _task(repo, "review-me")["state"] == "REVIEW"
    _ok(repo, "approve", "Task/review-me", "--reason", "good now")
    _ok(repo, "apply", "--auto-approve")
    assert _task(repo, "review-me")["state"] == "DONE"


def test_request_changes_is_refused_outside_review_and_without_words(
    repo: GovRepo, alice: Signer
) -> None:
    repo.task("plain", agent="summarizer")
    repo.commit("a plain task")
    _ok(repo, "apply", "--auto-approve")
    _sign_as(repo, alice)
    head = repo.head()

    outside = repo.mc("approve", "Task/plain", "--request-changes", "redo it")
    empty = repo.mc("approve", "Task/plain", "--request-changes", " ")
    agent = repo.mc("approve", "Agent/summarizer", "--request-changes", "redo it")

    assert outside.returncode == 1 and "Task/plain is DONE" in outside.stderr
    assert empty.returncode == 1 and "needs the feedback" in empty.stderr
    assert agent.returncode == 1 and "only on a task" in agent.stderr
    assert repo.head() == head  # nothing was signed or committed
    assert "Traceback" not in outside.stderr + empty.stderr + agent.stderr


def test_retry_refuses_a_task_that_is_not_failed_or_blocked(repo: GovRepo) -> None:
    repo.task("plain", agent="summarizer")
    repo.commit("a plain task")
    _ok(repo, "apply", "--auto-approve")

    refused = repo.mc("retry", "plain")
    unknown = repo.mc("retry", "no-such-task")

    assert refused.returncode == 1 and "task plain is DONE" in refused.stderr
    assert unknown.returncode == 1 and "no task or workflow run named" in unknown.stderr


def test_approve_takes_several_targets_and_warns_about_approvals_that_will_not_count(
    repo: GovRepo, alice: Signer, mallory: Signer
) -> None:
    repo.agent("second")
    repo.commit("two agents")
    _ok(repo, "apply", "--auto-approve")
    repo.agent("summarizer", version="v2")
    repo.agent("second", version="v2")
    repo.commit("new commands: both HIGH")
    _ok(repo, "apply", "--auto-approve", "--no-wait")
    _sign_as(repo, alice)

    both = repo.mc("approve", "Agent/summarizer", "Agent/second", "--reason", "read both")
    assert both.returncode == 0, both.stderr
    assert "Approved Agent/summarizer" in both.stdout and "Approved Agent/second" in both.stdout
    assert "warning" not in both.stderr
    assert len(list((repo.root / "approvals").glob("*.yaml"))) == 2
    _ok(repo, "apply", "--auto-approve", "--no-wait")  # recorded: the next one repeats it

    again = repo.mc("approve", "Agent/summarizer")
    assert again.returncode == 0, again.stderr
    assert "alice already decided approve on this content of Agent/summarizer" in again.stderr

    _sign_as(repo, mallory)
    stranger = repo.mc("approve", "Agent/summarizer")
    assert stranger.returncode == 0, stranger.stderr
    assert "is not declared by any approver in mission.yaml" in stranger.stderr
    assert "will not count" in stranger.stderr


def test_the_text_plan_says_who_approved(repo: GovRepo, alice: Signer) -> None:
    repo.commit("mission")
    _ok(repo, "apply", "--auto-approve")
    repo.agent("summarizer", version="v2")
    repo.commit("a new command: HIGH")
    repo.approve(alice, "Agent/summarizer")

    shown = repo.mc("plan")

    assert shown.returncode == 0, shown.stderr
    assert "~ Agent/summarizer" in shown.stdout and "approved by alice" in shown.stdout
