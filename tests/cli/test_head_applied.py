"""Fault 6: "HEAD applied" means HEAD's desired state is the applied one, digest for digest — a
commit that changes no spec leaves HEAD applied, under `mc apply` and under `mc serve`."""

from __future__ import annotations

import json

from helpers.serve import served
from helpers.starter import GitRepo, flat, mc

APPLY = ("apply", "--auto-approve", "--no-wait")
BEHIND = "(HEAD not applied)"


def status_json(repo: GitRepo) -> dict[str, object]:
    proc = mc("status", "--json", cwd=repo.root)
    assert proc.returncode == 0, proc.stderr
    found: dict[str, object] = json.loads(proc.stdout)
    return found


def status_text(repo: GitRepo) -> str:
    proc = mc("status", cwd=repo.root)
    assert proc.returncode == 0, proc.stderr
    return flat(proc.stdout)


def test_a_commit_that_changes_no_spec_leaves_head_applied(applied_repo: GitRepo) -> None:
    applied = applied_repo.head()
    applied_repo.write("NOTES.md", "Not a mission file.\n")
    notes = applied_repo.commit("notes")

    proc = mc(*APPLY, cwd=applied_repo.root)
    assert proc.returncode == 0, proc.stderr
    assert "No changes to apply." in proc.stdout
    assert BEHIND not in status_text(applied_repo)
    status = status_json(applied_repo)
    assert (status["head"], status["head_applied"]) == (notes, True)
    assert status["applied_commit"] == applied  # still the last commit that changed something

    applied_repo.replace("tasks/summarize-readme.yaml", "prompt:", "prompt: Briefly.")
    applied_repo.commit("a spec change, not applied yet")
    assert BEHIND in status_text(applied_repo)
    assert status_json(applied_repo)["head_applied"] is False

    assert mc(*APPLY, cwd=applied_repo.root).returncode == 0
    assert BEHIND not in status_text(applied_repo)
    assert status_json(applied_repo)["head_applied"] is True


def test_under_serve_a_commit_that_changes_no_spec_leaves_head_applied(
    mission_repo: GitRepo,
) -> None:
    with served(mission_repo.root) as serve:
        first = serve.wait_reconciled(mission_repo.head())
        assert first["last_error"] is None
        mission_repo.write("NOTES.md", "Not a mission file.\n")
        notes = mission_repo.commit("notes")
        serve.wait_reconciled(notes)

        text = status_text(mission_repo)  # read through serve's API: serve holds the state
        assert BEHIND not in text, text
        status = status_json(mission_repo)
        assert (status["head"], status["head_applied"]) == (notes, True)
        assert status["applied_commit"] != notes
