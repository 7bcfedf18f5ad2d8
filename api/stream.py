"""Server-Sent Events for live pages: new audit events and changed counts, polled from the state.

Each connection polls the events table about twice a second, lives at most `max_seconds`
(the browser's EventSource reconnects with Last-Event-ID and carries on where it left off)
and ends as soon as the client goes away.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import asdict
from typing import Any, Protocol, TypeVar

import anyio
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from api.views import Counts, Readers, counts
from reconciler.commands.status import event_to_json
from state.records import Event

T = TypeVar("T")
BATCH = 200  # events per poll; a backlog is sent in batches without waiting
KEEPALIVE_S = 15.0
RECONNECT_MS = 1500


class Read(Protocol):
    """`Context.read`: run a function over the readers of one request."""

    def __call__(self, build: Callable[[Readers], T]) -> T: ...


def frame(kind: str, data: Any, seq: int | None = None) -> str:
    lines = [f"event: {kind}"]
    if seq is not None:
        lines.append(f"id: {seq}")
    lines.append("data: " + json.dumps(data, default=str, separators=(",", ":")))
    return "\n".join(lines) + "\n\n"


def start_seq(request: Request, after: int | None, read: Callable[[], int]) -> int:
    """Resume after Last-Event-ID, else after `after`, else from now on."""
    last_id = request.headers.get("last-event-id", "")
    if last_id.isdigit():
        return int(last_id)
    return after if after is not None else read()


async def event_stream(
    request: Request,
    read: Read,
    after: int,
    *,
    poll_s: float,
    max_seconds: float,
) -> AsyncIterator[str]:
    """The frames of one connection: `mc-event` per new event, `counts` when they change."""
    deadline = time.monotonic() + max_seconds
    seq = after
    sent: Counts | None = None
    last_frame = time.monotonic()
    yield f"retry: {RECONNECT_MS}\n\n"

    def poll() -> tuple[list[Event], Counts]:
        return read(lambda r: (r.dash.event_page(after=seq, limit=BATCH)[::-1], counts(r)))

    while time.monotonic() < deadline and not await request.is_disconnected():
        events, now_counts = await run_in_threadpool(poll)
        out = [frame("mc-event", event_to_json(e), e.seq) for e in events]
        if events:
            seq = events[-1].seq
        if now_counts != sent:
            sent = now_counts
            out.append(frame("counts", asdict(now_counts)))
        if not out and time.monotonic() - last_frame > KEEPALIVE_S:
            out.append(": keepalive\n\n")
        if out:
            last_frame = time.monotonic()
            yield "".join(out)
        if len(events) < BATCH:
            await anyio.sleep(poll_s)
