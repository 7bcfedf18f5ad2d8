"""Issue 15, item 5 and the new-user findings, through the real CLI: `mc validate` names the
tree it checked and the edits it did not; money has one format in tables; run ids are never
cut at 80 columns; `--help` shows no `<bool>` beside flags."""

from __future__ import annotations

import os
import re

from helpers.mc import flat, run_mc
from helpers.starter import GitRepo, mc


def test_validate_names_the_tree_it_checked_and_the_edits_it_did_not(
    mission_repo: GitRepo,
) -> None:
    head = mission_repo.head()[:12]
    mission_repo.write("tasks/summarize-readme.yaml", "kind: [\n")

    committed = mc("validate", cwd=mission_repo.root)
    worktree = mc("validate", "--worktree", cwd=mission_repo.root)

    assert committed.returncode == 0, committed.stderr
    shown = flat(committed.stdout)
    assert f"Valid. 1 Agent, 1 Mission, 1 Task (checked commit {head} (HEAD))" in shown
    assert "uncommitted changes were not checked: tasks/summarize-readme.yaml" in shown
    assert (
        worktree.returncode == 1
        and "tasks/summarize-readme.yaml:2:1: invalid YAML" in worktree.stderr
    )


def test_tables_show_money_with_two_decimals_and_whole_run_ids_at_80_columns(
    mission_repo: GitRepo,
) -> None:
    assert mc("apply", "--auto-approve", cwd=mission_repo.root).returncode == 0
    narrow = {**os.environ, "COLUMNS": "80"}

    runs = run_mc("-C", str(mission_repo.root), "runs", env=narrow)
    agents = run_mc("-C", str(mission_repo.root), "agents", env=narrow)
    as_json = mc("runs", "--json", cwd=mission_repo.root)

    assert runs.returncode == 0 and agents.returncode == 0
    run_id = re.search(r'"id": "(r-[0-9a-f]{16})"', as_json.stdout)
    assert run_id is not None and run_id.group(1) in runs.stdout
    assert "$0.00" in runs.stdout and "$0.00 / $1.00" in agents.stdout
    assert '"cost_usd": "0' in as_json.stdout  # JSON keeps the decimal string


def test_help_shows_no_bool_type_beside_flags(mission_repo: GitRepo) -> None:
    for command in ("plan", "apply", "tasks", "approve", "serve"):
        shown = mc(command, "--help", cwd=mission_repo.root)
        assert shown.returncode == 0, shown.stderr
        assert "<bool>" not in shown.stdout, command
        assert "--help" in shown.stdout
