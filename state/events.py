"""The event log: read by CLI, dashboard and bot; appended by apply, serve and write batches."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime

from state.db import Database
from state.records import Event, NewEvent
from state.table_store import TableStore, compact_json


class EventReader(TableStore):
    """Pages of the append-only event log."""

    def events(
        self, *, since: datetime | None = None, after_seq: int = 0, limit: int = 100
    ) -> list[Event]:
        """The newest `limit` events (after `since` / `after_seq`), oldest first."""
        rows = self.db.fetchall(
            "SELECT * FROM (SELECT seq, time, actor, kind, subject, data, commit FROM events"
            " WHERE seq > ? AND time >= ? ORDER BY seq DESC LIMIT ?) ORDER BY seq",
            [after_seq, since or datetime(1970, 1, 1), limit],
        )
        return [Event(r[0], r[1], r[2], r[3], r[4], json.loads(r[5]), r[6]) for r in rows]

    def latest_event(self, kind: str, commit: str) -> Event | None:
        """The newest event of `kind` recorded for `commit` (e.g. `reconcile.error`), or None."""
        r = self.db.fetchone(
            "SELECT seq, time, actor, kind, subject, data, commit FROM events"
            " WHERE kind = ? AND commit = ? ORDER BY seq DESC LIMIT 1",
            [kind, commit],
        )
        return Event(r[0], r[1], r[2], r[3], r[4], json.loads(r[5]), r[6]) if r else None


class EventWriter(TableStore):
    """Appending to the event log."""

    def append_events(self, events: Sequence[NewEvent], now: datetime) -> None:
        append_events(self.db, events, now)


def append_events(db: Database, events: Sequence[NewEvent], now: datetime) -> None:
    """All events in one statement, stamped `now`; the log assigns their sequence numbers."""
    if not events:
        return
    db.execute(
        "INSERT INTO events (time, actor, kind, subject, data, commit)"
        " SELECT ?, unnest(?), unnest(?), unnest(?), unnest(?)::JSON, unnest(?)",
        [
            now,
            [e.actor for e in events],
            [e.kind for e in events],
            [e.subject for e in events],
            [compact_json(e.data) for e in events],
            [e.commit for e in events],
        ],
    )
