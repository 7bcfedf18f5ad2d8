"""Plain frozen records the state interfaces return; readers never see DuckDB types."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any


@dataclass(frozen=True, slots=True)
class AppliedResource:
    """A resource as last applied; `spec_json` is parsed only when a diff needs it."""

    kind: str
    name: str
    digest: str
    generation: int
    spec_json: str
    labels_json: str
    path: str
    commit: str | None

    @property
    def key(self) -> str:
        return f"{self.kind}/{self.name}"

    @property
    def spec(self) -> dict[str, Any]:
        value: dict[str, Any] = json.loads(self.spec_json)
        return value

    @property
    def labels(self) -> dict[str, str]:
        value: dict[str, str] = json.loads(self.labels_json)
        return value


@dataclass(frozen=True, slots=True)
class Event:
    seq: int
    time: datetime
    actor: str
    kind: str
    subject: str
    data: dict[str, Any]
    commit: str | None


@dataclass(frozen=True, slots=True)
class NewEvent:
    """An event to append; seq and time are assigned by the store."""

    actor: str
    kind: str
    subject: str
    data: dict[str, Any]
    commit: str | None = None


@dataclass(frozen=True, slots=True)
class PendingAction:
    key: str
    action: str
    digest: str | None
    risk: str
    reason: str
    commit: str | None
    since: datetime


@dataclass(frozen=True, slots=True)
class TaskRow:
    name: str
    state: str
    reason: str | None
    agent: str | None
    attempts: int
    abandoned: int
    next_attempt_at: datetime | None
    output: Any
    outputs: dict[str, Any] | None
    created_at: datetime
    updated_at: datetime
    workflow_run: str | None = None
    step: str | None = None
    feedback: str | None = None
    rework: int = 0


@dataclass(frozen=True, slots=True)
class WorkflowRunRow:
    name: str
    workflow: str
    workflow_digest: str
    workflow_spec: dict[str, Any]
    inputs: dict[str, Any]
    retry_nonce: int
    status: str
    outputs: dict[str, Any] | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class DropRow:
    run_id: str
    task: str
    path: str
    sha256: str
    size: int
    media_type: str
    time: datetime


@dataclass(frozen=True, slots=True)
class RunRow:
    id: str
    task: str
    attempt: int
    agent: str
    executor: str
    state: str
    owner_pid: int | None
    pid: int | None
    proc_start: int | None
    workspace: str | None
    started_at: datetime
    ended_at: datetime | None
    exit_code: int | None
    status: str | None
    error_class: str | None
    error: str | None
    cost_usd: Decimal
    tokens: int


@dataclass(frozen=True, slots=True)
class ApprovalRow:
    """One approval decision as judged: accepted ones count, rejected ones say why."""

    id: str  # git:<path>@<commit> | telegram:<chat>:<message>:<user>
    target: str
    digest: str
    approver: str | None
    decision: str  # approve | deny
    channel: str  # git | telegram
    status: str  # accepted | rejected
    reason: str | None
    evidence: dict[str, Any]
    at: datetime  # when it starts to count: signed (never later than first seen), or received
    seen: datetime | None = None  # when mc first recorded it (None: not recorded yet)
