"""Applied resources, pending approvals and meta: read by the planner, written by plan/apply."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from state.records import AppliedResource, PendingAction
from state.table_store import TableStore, compact_json

RESOURCE_COLUMNS = "kind, name, digest, generation, spec, labels, path, commit"


@dataclass(frozen=True, slots=True)
class ResourceWrite:
    kind: str
    name: str
    labels: dict[str, str]
    spec: dict[str, Any]
    digest: str
    path: str


@dataclass(frozen=True, slots=True)
class PendingWrite:
    key: str
    action: str
    digest: str | None
    risk: str
    reason: str


class ResourceReader(TableStore):
    """What was applied, from which commit, and what waits for approval."""

    def serial(self) -> int:
        row = self.db.fetchone("SELECT value FROM meta WHERE key = 'serial'")
        return int(row[0]) if row else 0

    def applied_commit(self) -> str | None:
        row = self.db.fetchone("SELECT value FROM meta WHERE key = 'applied_commit'")
        return row[0] if row else None

    def proposed_policy(self) -> dict[str, Any] | None:
        """The policy of the mission last planned for apply (its commit's, applied or not):
        dispatch gates judge by it as well as by the applied one. None before the first apply."""
        row = self.db.fetchone("SELECT value FROM meta WHERE key = 'proposed_policy'")
        return dict(json.loads(row[0])) if row else None

    def resources(self) -> dict[str, AppliedResource]:
        rows = self.db.fetchall(f"SELECT {RESOURCE_COLUMNS} FROM resources")
        return {f"{r[0]}/{r[1]}": AppliedResource(*r) for r in rows}

    def resource_digests(self) -> dict[str, str]:
        """Kind/name -> digest of everything applied: all a plan needs for unchanged resources."""
        rows = self.db.fetchall("SELECT kind || '/' || name, digest FROM resources")
        return {r[0]: r[1] for r in rows}

    def resources_by_key(self, keys: Sequence[str]) -> dict[str, AppliedResource]:
        if not keys:
            return {}
        rows = self.db.fetchall(
            f"SELECT {RESOURCE_COLUMNS} FROM resources"
            " WHERE kind || '/' || name IN (SELECT unnest(?))",
            [list(keys)],
        )
        return {f"{r[0]}/{r[1]}": AppliedResource(*r) for r in rows}

    def resource(self, kind: str, name: str) -> AppliedResource | None:
        row = self.db.fetchone(
            f"SELECT {RESOURCE_COLUMNS} FROM resources WHERE kind = ? AND name = ?",
            [kind, name],
        )
        return AppliedResource(*row) if row else None

    def pending(self) -> list[PendingAction]:
        rows = self.db.fetchall(
            "SELECT key, action, digest, risk, reason, commit, since FROM pending ORDER BY key"
        )
        return [PendingAction(*r) for r in rows]


class ResourceWriter(TableStore):
    """Apply's writes: the serial, meta keys, applied resources and the pending mirror."""

    def bump_serial(self, by: int = 1) -> int:
        row = self.db.fetchone(
            "UPDATE meta SET value = CAST(CAST(value AS BIGINT) + ? AS VARCHAR)"
            " WHERE key = 'serial' RETURNING value",
            [by],
        )
        assert row is not None
        return int(row[0])

    def set_meta(self, key: str, value: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", [key, value])

    def upsert_resources(
        self, writes: Sequence[ResourceWrite], commit: str | None, now: datetime
    ) -> None:
        if not writes:
            return
        self.db.execute(
            "INSERT OR REPLACE INTO resources"
            " SELECT w.kind, w.name, w.labels::JSON, w.spec::JSON, w.digest, w.path, ?,"
            " coalesce(r.generation, 0) + 1, ?"
            " FROM (SELECT unnest(?) AS kind, unnest(?) AS name, unnest(?) AS labels,"
            " unnest(?) AS spec, unnest(?) AS digest, unnest(?) AS path) w"
            " LEFT JOIN resources r ON r.kind = w.kind AND r.name = w.name",
            [
                commit,
                now,
                [w.kind for w in writes],
                [w.name for w in writes],
                [compact_json(w.labels) for w in writes],
                [compact_json(w.spec) for w in writes],
                [w.digest for w in writes],
                [w.path for w in writes],
            ],
        )

    def delete_resources(self, keys: Sequence[tuple[str, str]]) -> None:
        if keys:
            self.db.execute(
                "DELETE FROM resources WHERE (kind, name) IN (SELECT (unnest(?), unnest(?)))",
                [[k for k, _ in keys], [n for _, n in keys]],
            )

    def replace_pending(
        self, pending: Sequence[PendingWrite], commit: str | None, now: datetime
    ) -> None:
        """Pending approvals mirror the latest plan: keep `since` for ones still waiting."""
        keep = self.db.fetchall("SELECT key, digest, since FROM pending")
        since = {(k, d): s for k, d, s in keep}
        self.db.execute("DELETE FROM pending")
        if pending:
            self.db.execute(
                "INSERT INTO pending SELECT unnest(?), unnest(?), unnest(?), unnest(?),"
                " unnest(?), ?, unnest(?)",
                [
                    [p.key for p in pending],
                    [p.action for p in pending],
                    [p.digest for p in pending],
                    [p.risk for p in pending],
                    [p.reason for p in pending],
                    commit,
                    [since.get((p.key, p.digest), now) for p in pending],
                ],
            )
