"""`mc approve` before it signs: a warning for an approval nothing waits for (a DONE task, a
resource with no planned change needing one), "not declared at HEAD" from the commit alone
even while `mc serve` holds the state, and the file named after the approver whose key signs."""

from __future__ import annotations

from governance_harness import GovRepo, Signer, git
from helpers.serve import served

IDLE = "nothing waits for this approval"


def _sign_as(repo: GovRepo, signer: Signer, user_name: str) -> None:
    git(repo.root, "config", "gpg.format", "ssh")
    git(repo.root, "config", "user.signingkey", signer.signing_key)
    git(repo.root, "config", "user.name", user_name)


def test_an_approval_nothing_waits_for_is_warned_about_and_still_signed(
    repo: GovRepo, alice: Signer
) -> None:
    repo.task("plain", agent="summarizer")
    repo.commit("a plain task")
    done = repo.mc("apply", "--auto-approve")
    assert done.returncode == 0, done.stderr
    _sign_as(repo, alice, "Alice")
    head = repo.head()

    task = repo.mc("approve", "Task/plain", "Agent/summarizer")

    assert task.returncode == 0, task.stderr
    assert (
        f"Task/plain: {IDLE} (it is DONE, and no planned change to it needs one);"
        " it will be recorded but change nothing"
    ) in " ".join(task.stderr.split())
    assert f"Agent/summarizer: {IDLE} (no planned change to it needs one)" in " ".join(
        task.stderr.split()
    )
    assert task.stderr.count("warning:") == 2
    assert repo.head() != head  # warned, not refused: as the other approve warnings


def test_a_pending_change_gets_no_idle_warning_and_the_file_names_the_approver(
    waiting: GovRepo, alice: Signer
) -> None:
    _sign_as(waiting, alice, "Build Bot")  # git's user is not who signs

    said = waiting.mc("approve", "Agent/summarizer")

    assert said.returncode == 0, said.stderr
    assert "warning" not in said.stderr
    [path] = [p.name for p in (waiting.root / "approvals").glob("*.yaml")]
    assert path.startswith("ok-agent-summarizer-alice-"), path
    assert "build-bot" not in path


def test_an_undeclared_target_is_refused_from_the_commit_while_serve_holds_the_state(
    waiting: GovRepo, alice: Signer
) -> None:
    _sign_as(waiting, alice, "Alice")
    head = waiting.head()
    with served(waiting.root) as serve:
        serve.wait_reconciled(head)
        nope = waiting.mc("approve", "Task/nope")

    assert nope.returncode == 1
    assert nope.stderr.strip() == (
        "error: Task/nope: not declared at HEAD and never applied; nothing to approve"
    )
    assert waiting.head() == head
