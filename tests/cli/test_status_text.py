"""`mc status` prints what it was told verbatim: text from the plan (a suggested rule with
`[...]` in it) is not read as terminal markup."""

from __future__ import annotations

import os

from helpers.starter import GitRepo, apply_head, mc

AGENT = "agents/summarizer.yaml"


def test_a_suggested_rule_in_the_pending_table_keeps_its_brackets(mission_repo: GitRepo) -> None:
    assert len(apply_head(mission_repo.root).applied) == 3  # first apply: trusted
    mission_repo.replace(AGENT, "spec:\n", "spec:\n  sandbox: none\n")
    mission_repo.commit("run the summarizer unconfined")
    wide = {**os.environ, "COLUMNS": "400"}
    plan = mc("plan", cwd=mission_repo.root, env=wide)
    assert "fields: [spec.sandbox]" in plan.stdout, plan.stdout  # the hint, as planned
    mc("apply", "--auto-approve", cwd=mission_repo.root, env=wide)
    status = mc("status", cwd=mission_repo.root, env=wide)
    assert "Pending approval" in status.stdout, status.stdout
    assert "fields: [spec.sandbox]" in status.stdout, status.stdout
