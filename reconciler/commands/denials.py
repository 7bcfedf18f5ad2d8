"""Who or what denied a task: the one answer `mc task` (task_views.py) and the dashboard's task
page (api/task_links.py) give for a task the engine failed as denied."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from state.dashboard import DashboardReader

DENIED_PREFIX = "denied"  # the engine's reason for a task whose dispatch was denied


def denied_by(
    dash: DashboardReader,
    target: str,
    digest: str | None,
    policy: Callable[[], tuple[str, str] | None],
) -> str | None:
    """The approvers whose deny of `target` (`Task/NAME`) at `digest` counts (each with the
    channel and their comment), else the policy rule when `policy()` — the (risk, rule) the
    dispatch gate judges the task by, asked only when no approver denied — says DENY; None when
    neither denied it. `digest` None accepts a deny of any content."""
    denies = [
        a
        for a in dash.approvals(targets=[target])
        if a.decision == "deny"
        and a.status == "accepted"
        and (digest is None or a.digest == digest)
    ]
    if denies:
        return "; ".join(_deny_line(a.approver, a.channel, a.evidence) for a in denies)
    judged = policy()
    if judged is not None and judged[0] == "DENY":
        return f"denied by policy: {judged[1]} of mission.yaml decides DENY for its dispatch"
    return None


def _deny_line(approver: str | None, channel: str, evidence: dict[str, Any]) -> str:
    line = f"denied by {approver or 'an approver'} via {channel}"
    note = evidence.get("comment")
    return f"{line}: “{note}”" if note else line
