"""What `mc status` says after HEAD: why HEAD was not applied (the reconcile error `mc serve`
recorded for it, and what to do), or that HEAD was applied and actions wait for approval."""

from __future__ import annotations

from helpers.serve import served
from helpers.starter import GitRepo, apply_head, flat, mc
from helpers.waiting import wait_until

AGENT = "agents/summarizer.yaml"
BEHIND = "(HEAD not applied)"


def status_text(repo: GitRepo) -> str:
    proc = mc("status", cwd=repo.root)
    assert proc.returncode == 0, proc.stderr
    return flat(proc.stdout)


def test_head_applied_with_an_action_waiting_for_approval_says_so(mission_repo: GitRepo) -> None:
    assert len(apply_head(mission_repo.root).applied) == 3  # first apply: trusted
    mission_repo.replace(AGENT, "spec:\n", "spec:\n  sandbox: none\n")
    mission_repo.commit("run the summarizer unconfined (needs an approval)")
    proc = mc("apply", "--auto-approve", "--no-wait", cwd=mission_repo.root)
    assert proc.returncode == 0, proc.stderr

    text = status_text(mission_repo)
    assert "(HEAD applied; 1 action(s) wait for approval: mc approvals)" in text, text
    assert BEHIND not in text


def test_a_bad_commit_under_serve_shows_its_error_and_what_to_do(mission_repo: GitRepo) -> None:
    with served(mission_repo.root) as serve:
        serve.wait_reconciled(mission_repo.head())
        mission_repo.write("tasks/broken.yaml", "kind: Task\nmetadata: {name: broken}\nspec: [\n")
        bad = mission_repo.commit("a task that does not parse")
        wait_until(
            lambda: serve.facts()["last_error_commit"] == bad, 30, "serve to reject the commit"
        )

        held = status_text(mission_repo)  # answered by mc serve, which holds the state
    after = status_text(mission_repo)  # read from the file once serve has stopped

    for text in (held, after):
        assert BEHIND in text, text
        assert "HEAD could not be applied: tasks/broken.yaml" in text, text
        assert "fix it and commit again (`mc validate` lists every problem)" in text, text
