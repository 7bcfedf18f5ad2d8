"""What `mc serve` prints while it runs: one line per reconcile, dispatch, finished run and
error, as text or JSON (`--log-format`). Dispatches, finished runs and errors are read back
from the audit log the loop just wrote (serve/loop.py tails it), so the lines say exactly what
was recorded; reconciles come from the loop itself.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any, Literal

from state.records import Event

LogFormat = Literal["text", "json"]
Record = dict[str, Any]
TEXT_KEYS = ("commit", "actions", "took_ms", "task", "agent", "run", "status", "cost_usd")


def records_of(events: Iterable[Event]) -> list[Record]:
    """The log records among these audit events (others are not logged)."""
    found: list[Record] = []
    for e in events:
        record = _record(e)
        if record is not None:
            found.append({"time": e.time.isoformat(timespec="seconds"), **record})
    return found


def _record(e: Event) -> Record | None:
    data = e.data
    if e.kind == "task.transition" and data.get("to") == "ASSIGNED":
        run = str(data.get("key", "")).rpartition(":")[2]
        return {"event": "dispatch", "task": e.subject.removeprefix("Task/"), "run": run,
                "detail": data.get("reason")}  # fmt: skip
    if e.kind == "run.ended":
        return {
            "event": "run.finished",
            "run": e.subject.removeprefix("Run/"),
            "task": data.get("task"),
            "agent": data.get("agent"),
            "status": data.get("status"),
            "cost_usd": data.get("cost_usd"),
            "detail": data.get("error"),
        }
    if e.kind == "reconcile.error":
        errors = data.get("errors") or [data.get("reason", "error")]
        commit = e.commit[:12] if e.commit else None
        return {"event": "error", "commit": commit, "detail": "; ".join(map(str, errors))}
    return None


def reconcile_record(now: datetime, commit: str | None, actions: int, seconds: float) -> Record:
    return {
        "time": now.isoformat(timespec="seconds"),
        "event": "reconcile",
        "commit": commit[:12] if commit else None,
        "actions": actions,
        "took_ms": round(seconds * 1000, 1),
    }


def render(record: Record, fmt: LogFormat) -> str:
    """One line: JSON (every field), or `TIME EVENT key=value … detail`."""
    if fmt == "json":
        return json.dumps(record, default=str, ensure_ascii=False)
    parts = [f"{record['time']}Z", f"{record['event']:<12}"]
    parts += [f"{k}={record[k]}" for k in TEXT_KEYS if record.get(k) not in (None, "")]
    if record.get("detail"):
        parts.append(str(record["detail"]).replace("\n", " ")[:300])
    return " ".join(parts)


def printer(fmt: LogFormat, write: Callable[[str], None]) -> Callable[[Record], None]:
    """A sink for the loop: render each record and hand the line to `write`."""
    return lambda record: write(render(record, fmt))
