"""Which events people hear about, and how a burst becomes one message (pure; time is given).

Escalations, failures after the last retry, budget stops, quarantines, mode overrides and
reconcile errors are collected until things go quiet (or for at most `max_hold_s`), then sent
as one message grouped by kind with counts and the first few subjects; at most `per_minute`
messages leave per minute, the rest waits and is merged into the next one.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from state.records import Event

SAMPLE = 3  # subjects named per kind
MAX_TEXT = 3500  # Telegram allows 4096 characters per message

# label and rank (most urgent first) of each kind of notice
KINDS: dict[str, tuple[str, int]] = {
    "reconcile": ("🛑 reconcile error", 0),
    "quarantined": ("🚫 agent quarantined", 1),
    "override": ("⏸ mode override", 2),
    "escalated": ("🚨 escalated", 3),
    "budget": ("💸 stopped by budget", 4),
    "failed": ("❌ failed after the last retry", 5),
}


@dataclass(frozen=True)
class Notice:
    kind: str  # a key of KINDS
    subject: str
    detail: str


def notice_of(event: Event) -> Notice | None:
    data = event.data
    match event.kind:
        case "escalation":
            return Notice("escalated", event.subject, str(data.get("reason", "")))
        case "task.failed":
            return Notice("failed", event.subject, str(data.get("reason", "")))
        case "task.transition" if data.get("to") == "BLOCKED" and str(
            data.get("reason") or ""
        ).startswith("budget"):
            return Notice("budget", event.subject, str(data["reason"]))
        case "agent.quarantined":
            return Notice("quarantined", event.subject, str(data.get("reason", "")))
        case "override.set":
            why = f" ({data['reason']})" if data.get("reason") else ""
            return Notice("override", f"mode={data.get('mode')} by {event.actor}", why.strip())
        case "override.lifted":
            return Notice("override", f"lifted by {event.actor}", "git's mode applies again")
        case "reconcile.error":
            errors = data.get("errors") or ["?"]
            where = f"commit {event.commit[:12]}" if event.commit else "HEAD"
            return Notice("reconcile", where, str(errors[0]))
    return None


@dataclass
class _Group:
    count: int = 0
    subjects: list[str] = field(default_factory=list)
    first_detail: str = ""


class NoticeBuffer:
    def __init__(self, quiet_s: float, max_hold_s: float, per_minute: int) -> None:
        self.quiet_s, self.max_hold_s, self.per_minute = quiet_s, max_hold_s, per_minute
        self._groups: dict[str, _Group] = {}
        self._first_at: float | None = None
        self._last_at = 0.0
        self._sent: deque[float] = deque()

    def add(self, notices: list[Notice], now: float) -> None:
        for n in notices:
            group = self._groups.setdefault(n.kind, _Group())
            group.count += 1
            if len(group.subjects) < SAMPLE:
                group.subjects.append(n.subject)
            group.first_detail = group.first_detail or n.detail
        if notices:
            self._first_at = now if self._first_at is None else self._first_at
            self._last_at = now

    def held(self) -> int:
        return sum(g.count for g in self._groups.values())

    def due(self, now: float) -> str | None:
        """One message for everything held, once quiet (or held too long) and the rate allows."""
        if self._first_at is None:
            return None
        settled = now - self._last_at >= self.quiet_s or now - self._first_at >= self.max_hold_s
        while self._sent and now - self._sent[0] >= 60.0:
            self._sent.popleft()
        if not settled or len(self._sent) >= self.per_minute:
            return None
        text = render_notices(self._groups)
        self._groups, self._first_at = {}, None
        self._sent.append(now)
        return text


def render_notices(groups: dict[str, _Group]) -> str:
    total = sum(g.count for g in groups.values())
    lines = [f"Mission Control: {total} event{'s' if total != 1 else ''}"]
    for kind in sorted(groups, key=lambda k: KINDS[k][1]):
        g = groups[kind]
        more = f" (+{g.count - len(g.subjects)} more)" if g.count > len(g.subjects) else ""
        lines.append(f"{KINDS[kind][0]} ×{g.count}: {', '.join(g.subjects)}{more}")
        if g.first_detail:
            lines.append(f"    {_clip(g.first_detail, 300)}")
    text = "\n".join(lines)
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"


def _clip(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
