"""The agent family (agents, memory): read by the engine and surfaces, quarantine set by serve.

The engine's own agent and memory writes go through `state.write_batch`."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from state.events import append_events
from state.records import NewEvent
from state.table_store import TableStore


class AgentReader(TableStore):
    """Agent status the system set (quarantine) and the agents' and tasks' memory."""

    def agent_overrides(self) -> dict[str, tuple[str, str | None]]:
        """Observed agent status set by the system (e.g. the loop breaker's quarantine)."""
        rows = self.db.fetchall("SELECT name, status, reason FROM agents")
        return {r[0]: (r[1], r[2]) for r in rows}

    def agent_status_rows(self) -> dict[str, tuple[str, str | None, str | None, datetime]]:
        """name -> (status, reason, agent digest it was set for, when)."""
        rows = self.db.fetchall("SELECT name, status, reason, digest, updated_at FROM agents")
        return {r[0]: (r[1], r[2], r[3], r[4]) for r in rows}

    def memory(self, scope_prefix: str = "") -> dict[str, dict[str, Any]]:
        rows = self.db.fetchall(
            "SELECT scope, key, value FROM memory WHERE starts_with(scope, ?) ORDER BY scope, key",
            [scope_prefix],
        )
        out: dict[str, dict[str, Any]] = {}
        for scope, key, value in rows:
            out.setdefault(scope, {})[key] = json.loads(value)
        return out


class AgentWriter(TableStore):
    """Quarantining an agent spec outside a write batch."""

    def record_quarantine(
        self, agent: str, reason: str, digest: str, actor: str, now: datetime
    ) -> None:
        """Quarantine this exact agent spec (a new spec in git lifts it), with its event."""
        self.db.execute(
            "INSERT OR REPLACE INTO agents (name, status, reason, updated_at, digest)"
            " VALUES (?, 'quarantined', ?, ?, ?)",
            [agent, reason, now, digest],
        )
        append_events(
            self.db,
            [NewEvent(actor, "agent.quarantined", f"Agent/{agent}", {"reason": reason})],
            now,
        )
