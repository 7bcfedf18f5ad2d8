"""Texts the bot sends (plain text, no markup to escape): requests, outcomes and command answers."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal

from api.telegram.awaiting import Awaiting, Description
from state.dashboard import RunningRun

MAX_TEXT = 4000

HELP = """Mission Control bot
/status — tasks by state, running work, spend today, mode
/pending — approval requests waiting, with their ids
/approve ID [comment] — approve a request (approvers)
/deny ID REASON — deny a request (approvers)
/changes ID FEEDBACK — send a task in review back to its agent (approvers; or reply to the request)
/pause [reason] — pause the mission until /resume or a commit changes its mode (approvers)
/resume — lift the pause (approvers)
/quarantine AGENT [reason] — stop an agent's work until its spec changes (approvers)
/spend — spend by agent, today and the last 7 days
/help — this list"""


def request_text(rid: str, item: Awaiting, desc: Description) -> str:
    lines = [
        f"🔐 Approval needed · {item.risk} · request {rid}",
        f"{item.action} {item.target}",
        f"digest {item.digest[:19]}…",
        "",
        "What will happen:",
        *(f"  {line}" for line in desc.lines),
        f"Estimated cost: {desc.cost or 'not declared'}",
        votes_line(item),
        f"Why: {item.note}",
        "",
        f"Approve or deny below, or /approve {rid} · /deny {rid} REASON",
    ]
    return clip("\n".join(lines))


def votes_line(item: Awaiting) -> str:
    given = f" (approved by {', '.join(item.approved_by)})" if item.approved_by else ""
    return (
        f"Approvals: {len(item.approved_by)} of {item.needed}{given};"
        f" still needed: {item.still_needed}"
    )


def with_outcome(body: str, outcome: str) -> str:
    return clip(f"{body}\n\n{outcome}")


def pending_text(items: Sequence[tuple[str, Awaiting]]) -> str:
    if not items:
        return "Nothing is waiting for approval."
    lines = [f"{len(items)} waiting for approval:"]
    for rid, a in items:
        lines.append(
            f"• {rid} · {a.risk} · {a.action} {a.target} · {a.still_needed} more approval(s)"
        )
    return clip("\n".join(lines))


def status_text(
    mission: str | None,
    mode: str,
    override: tuple[str, str, str | None, datetime] | None,
    counts: Mapping[str, int],
    running: Sequence[RunningRun],
    spent_today: Decimal,
    waiting: int,
) -> str:
    lines = [f"Mission {mission or '(nothing applied yet)'} · mode {mode}"]
    if override is not None:
        value, actor, reason, since = override
        why = f" — {reason}" if reason else ""
        lines.append(
            f"⚠ MODE OVERRIDDEN to {value.upper()} by {actor} since "
            f"{since.isoformat(timespec='seconds')}Z{why} (/resume lifts it)"
        )
    total = sum(counts.values())
    by_state = ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "none"
    lines.append(f"Tasks ({total}): {by_state}")
    lines.append(f"Running ({len(running)}):")
    lines += [f"  • {r.task} on {r.agent} since {_hms(r.started_at)}" for r in running[:10]]
    if len(running) > 10:
        lines.append(f"  … and {len(running) - 10} more")
    lines.append(f"Spend today: ${spent_today:.2f}")
    lines.append(f"Waiting for approval: {waiting} (/pending)")
    return clip("\n".join(lines))


def spend_text(
    today: date, by_agent_today: Mapping[str, Decimal], week: Sequence[tuple[str, date, Decimal]]
) -> str:
    totals: dict[str, Decimal] = {}
    for agent, _day, amount in week:
        totals[agent] = totals.get(agent, Decimal(0)) + amount
    agents = sorted(set(totals) | set(by_agent_today))
    if not agents:
        return "No spend recorded in the last 7 days."
    lines = [f"Spend by agent (today {today.isoformat()} · last 7 days):"]
    for agent in agents:
        day, week_total = by_agent_today.get(agent, Decimal(0)), totals.get(agent, Decimal(0))
        lines.append(f"• {agent}: ${day:.2f} · ${week_total:.2f}")
    all_day = sum(by_agent_today.values(), Decimal(0))
    lines.append(f"Total: ${all_day:.2f} · ${sum(totals.values(), Decimal(0)):.2f}")
    return clip("\n".join(lines))


def clip(text: str) -> str:
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"


def _hms(moment: datetime) -> str:
    return moment.strftime("%H:%M:%S")
