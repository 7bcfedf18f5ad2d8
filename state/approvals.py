"""Approvals and overrides: read by planner, CLI and bot; written by apply and bot requests."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime

from state.records import ApprovalRow
from state.table_store import TableStore, compact_json


class ApprovalReader(TableStore):
    """Recorded approval decisions and the emergency overrides set from Telegram."""

    def approvals(
        self, *, status: str | None = None, channel: str | None = None
    ) -> list[ApprovalRow]:
        where, params = ["1 = 1"], []
        if status is not None:
            where.append("status = ?")
            params.append(status)
        if channel is not None:
            where.append("channel = ?")
            params.append(channel)
        rows = self.db.fetchall(
            "SELECT id, target, digest, approver, decision, channel, status, reason, evidence,"
            " decided_at, recorded_at"
            f" FROM approvals WHERE {' AND '.join(where)} ORDER BY decided_at, id",
            params,
        )
        return [
            ApprovalRow(
                r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], json.loads(r[8]), r[9], r[10]
            )
            for r in rows
        ]

    def target_digests_since(self) -> dict[str, tuple[str, datetime]]:
        """target -> (its digest, since when it has had it), as last recorded by an apply."""
        rows = self.db.fetchall("SELECT target, digest, since FROM target_digests")
        return {r[0]: (r[1], r[2]) for r in rows}

    def overrides(self) -> dict[str, tuple[str, str, str | None, datetime]]:
        """Emergency overrides (mode=paused from Telegram): key -> (value, actor, reason, at)."""
        rows = self.db.fetchall("SELECT key, value, actor, reason, set_at FROM overrides")
        return {r[0]: (r[1], r[2], r[3], r[4]) for r in rows}


class ApprovalWriter(TableStore):
    """Recording and forgetting approvals; setting and clearing overrides."""

    def record_approvals(self, rows: Sequence[ApprovalRow], now: datetime) -> None:
        if rows:
            self.db.execute(
                "INSERT OR REPLACE INTO approvals SELECT unnest(?), unnest(?), unnest(?),"
                " unnest(?::VARCHAR[]), unnest(?), unnest(?), unnest(?), unnest(?::VARCHAR[]),"
                " unnest(?)::JSON, unnest(?::TIMESTAMP[]), unnest(?::TIMESTAMP[])",
                [
                    [r.id for r in rows],
                    [r.target for r in rows],
                    [r.digest for r in rows],
                    [r.approver for r in rows],
                    [r.decision for r in rows],
                    [r.channel for r in rows],
                    [r.status for r in rows],
                    [r.reason for r in rows],
                    [compact_json(r.evidence) for r in rows],
                    [r.at for r in rows],
                    [r.seen or now for r in rows],  # a re-judged row keeps its first sighting
                ],
            )

    def record_target_digests(self, current: Mapping[str, tuple[str, datetime]]) -> None:
        """Every approvable target's current digest and since when it has had it (what
        planning found); a target no longer declared is forgotten."""
        self.db.execute("DELETE FROM target_digests")
        if current:
            self.db.execute(
                "INSERT INTO target_digests SELECT unnest(?), unnest(?), unnest(?::TIMESTAMP[])",
                [list(current), [d for d, _ in current.values()], [s for _, s in current.values()]],
            )

    def forget_approvals(self, ids: Sequence[str]) -> None:
        if ids:
            self.db.execute("DELETE FROM approvals WHERE id IN (SELECT unnest(?))", [list(ids)])

    def set_override(
        self, key: str, value: str | None, actor: str, reason: str | None, now: datetime
    ) -> None:
        if value is None:
            self.db.execute("DELETE FROM overrides WHERE key = ?", [key])
        else:
            self.db.execute(
                "INSERT OR REPLACE INTO overrides VALUES (?, ?, ?, ?, ?)",
                [key, value, actor, reason, now],
            )
