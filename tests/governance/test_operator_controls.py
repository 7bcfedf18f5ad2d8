"""Operator controls in git: mission `mode` (paused, draining) and agent `status` (paused,
quarantined) decide what may start; `mc status` shows them. With approvers declared, these
switches are LOW by default, so an operator can pull them without waiting for approvals."""

from __future__ import annotations

import pytest
from governance_harness import GovRepo


@pytest.mark.parametrize("mode", ["paused", "draining"])
def test_mission_mode_stops_new_work_until_normal(repo: GovRepo, mode: str) -> None:
    repo.mission(mode=mode)
    repo.task("notes", agent="summarizer")
    repo.commit(f"mission {mode}")
    repo.apply(drive=True)

    assert repo.task_row("notes").state == "INBOX"
    assert repo.runs_of("notes") == 0
    shown = repo.mc("status")
    assert shown.returncode == 0, shown.stderr
    assert f"mode: {mode}" in shown.stdout

    repo.mission(mode="normal")
    repo.commit("back to normal")
    action = repo.action("Mission/governed")
    assert (action.decision.risk, action.decision.rule, action.status) == (
        "LOW",
        "default: low risk",
        "apply",
    )
    repo.apply(drive=True)
    assert repo.task_row("notes").state == "DONE"


def test_pausing_a_running_mission_is_low_risk(repo: GovRepo) -> None:
    repo.commit("mission")
    repo.apply()
    repo.mission(mode="paused")
    repo.commit("pause")

    action = repo.action("Mission/governed")
    assert (action.decision.risk, action.status) == ("LOW", "apply")
    repo.task("later", agent="summarizer")
    repo.commit("new work while paused")
    repo.apply(drive=True)
    assert repo.task_row("later").state == "INBOX"


@pytest.mark.parametrize("status", ["paused", "quarantined"])
def test_agent_status_in_git_holds_its_tasks(repo: GovRepo, status: str) -> None:
    repo.agent("helper", status=status)
    repo.task("held", agent="helper")
    repo.task("free", agent="summarizer")
    repo.commit(f"helper {status}")
    repo.apply(drive=True)

    held = repo.task_row("held")  # waits, saying for whom
    assert (held.state, held.reason) == ("BLOCKED", f"paused: agent helper is {status}")
    assert repo.runs_of("held") == 0
    assert repo.task_row("free").state == "DONE"
    shown = repo.mc("status").stdout
    [row] = [line for line in shown.splitlines() if line.startswith("│ helper ")]
    assert row.split("│")[2].strip() == status

    repo.agent("helper", status="active")
    repo.commit("helper back")
    action = repo.action("Agent/helper")
    assert (action.decision.risk, action.status) == ("LOW", "apply")
    repo.apply(drive=True)
    assert repo.task_row("held").state == "DONE"
