"""Audit events as one line of text for people (pure), shared by the dashboard (api/app.py) and
the CLI (`mc events`, `mc task`); the dashboard shows the raw JSON on demand, the CLI with --json.

`event_summary(kind, data)` picks the fields that matter for the kinds the reconciler writes
(task moves, runs, approvals, plan and resource changes, errors) and falls back to
`key=value` pairs of the scalar fields for any other kind. Values come from agents and
commits: the result is plain text, escaped by the template like any other.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from specs.money import money_text

MAX_LEN = 300


def _text(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(_text(v) for v in value)
    return str(value)


def _clip(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_LEN else text[: MAX_LEN - 1] + "…"


def _transition(d: Mapping[str, Any]) -> str:
    reason = f": {d['reason']}" if d.get("reason") else ""
    return f"{d.get('from', '?')} → {d.get('to', '?')}{reason}"


def _run_ended(d: Mapping[str, Any]) -> str:
    parts = [f"{d.get('status') or 'ended'}"]
    if d.get("agent"):
        parts.append(f"by {d['agent']}")
    if d.get("cost_usd") not in (None, "0", 0):
        parts.append(f"cost {_money(d['cost_usd'])}")
    if d.get("error"):
        parts.append(f"error: {d['error']}")
    return " · ".join(parts)


def _money(value: Any) -> str:
    """The tables' money format (specs/money.py); an odd value as written."""
    try:
        return money_text(value)
    except ValueError:
        return f"${value}"


def _approval(d: Mapping[str, Any]) -> str:
    who = d.get("approver") or "an unknown signer"
    line = f"{d.get('decision', 'approve')} by {who} via {d.get('channel', '?')}"
    evidence = d.get("evidence") if isinstance(d.get("evidence"), Mapping) else {}
    note = evidence.get("comment") if evidence else None
    if note:
        line += f" — “{note}”"
    if d.get("reason"):
        line += f" (rejected: {d['reason']})"
    return line


def _decided(d: Mapping[str, Any]) -> str:
    line = f"risk {d.get('risk', '?')} by {d.get('rule', '?')}"
    if d.get("status"):
        line = f"{d['status']}: {line}"
    if d.get("approved_by"):
        line += f", approved by {_text(d['approved_by'])}"
    return line


def _errors(d: Mapping[str, Any]) -> str:
    return "; ".join(_text(e) for e in d.get("errors", [])) or _pairs(d)


def _pairs(d: Mapping[str, Any]) -> str:
    """Scalar and list fields as key=value; nested objects are left to the raw JSON."""
    return " · ".join(
        f"{k}={_text(v)}"
        for k, v in d.items()
        if v is not None and v != "" and not isinstance(v, Mapping)
    )


SUMMARIES: dict[str, Callable[[Mapping[str, Any]], str]] = {
    "task.transition": _transition,
    "run.ended": _run_ended,
    "approval.accepted": _approval,
    "approval.rejected": _approval,
    "resource.created": _decided,
    "resource.updated": _decided,
    "resource.deleted": _decided,
    "plan.needs_approval": _decided,
    "plan.denied": _decided,
    "plan.unapprovable": _decided,
    "reconcile.error": _errors,
    "task.changes_requested": lambda d: (
        f"round {d.get('round')} by {d.get('by')}: {d.get('feedback')}"
    ),
    "workflow.rework": lambda d: (
        f"round {d.get('round')} by {d.get('verifier')}: {d.get('feedback')}"
    ),
    "note": lambda d: _text(d.get("text", "")) or _pairs(d),
}


def event_summary(kind: str, data: Mapping[str, Any]) -> str:
    """One line naming what happened; never raises on odd data (the JSON is shown too)."""
    try:
        if kind.startswith("workflow_run.") and "from" in data:  # the new status is the kind
            return _clip(f"{data['from']} → {kind.split('.', 1)[1].upper()}")
        return _clip(SUMMARIES.get(kind, _pairs)(data))
    except (AttributeError, TypeError, KeyError):
        return _clip(_pairs(data))
