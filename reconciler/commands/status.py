"""`mc status`, `mc events` and their JSON; called by cli/, the serve loop and api/stream.py."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from reconciler.commands.context import MissionContext
from reconciler.governance.confinement import (
    Exposure,
    exposure,
    exposure_from_json,
    exposure_to_json,
    unconfined_by,
)
from reconciler.plan.pipeline import matches_applied
from reconciler.repo.source import MissionRepo
from reconciler.tasks.lifecycle import ATTENTION
from specs.errors import MCError
from state.dashboard import IN_FLIGHT
from state.records import Event, PendingAction
from state.store import StateReader


@dataclass(frozen=True)
class StatusReport:
    mission: str | None
    mode: str | None
    applied_commit: str | None  # the last commit that changed something
    head: str | None
    head_applied: bool  # HEAD's desired state is the applied one, digest for digest
    serial: int
    tasks: dict[str, int]
    pending: list[PendingAction]
    agents: list[dict[str, Any]]
    dirty: list[str]
    attention: list[dict[str, Any]]  # tasks that need a person, with why
    overrides: dict[str, Any]
    exposure: Exposure  # agents without the sandbox or on the host network (shown loudly)
    runs_in_flight: int = 0  # runs LAUNCHING or RUNNING, as the state records them
    head_error: dict[str, str] | None = None  # HEAD not applied: why ("reason") and "fix"


def status(ctx: MissionContext) -> StatusReport:
    with ctx.read_state() as state:
        return status_with(state.reader, ctx.repo)


def status_with(r: StateReader, repo: MissionRepo) -> StatusReport:
    """The status report from any reader (the CLI's own, or serve's for `mc status`)."""
    try:
        head: str | None = repo.resolve("HEAD")
    except MCError:
        head = None
    resources = r.resources()
    mission = next((res for res in resources.values() if res.kind == "Mission"), None)
    mission_spec = mission.spec if mission else None
    overrides = r.agent_overrides()
    agents = [
        {
            "name": res.name,
            "status": overrides.get(res.name, (res.spec.get("status", "active"), None))[0],
            "capabilities": res.spec.get("capabilities", []),
            "concurrency": res.spec.get("concurrency", 1),
            "sandbox": "none" if unconfined_by(res.spec, mission_spec) else "bwrap",
            "network": res.spec.get("network", "none"),
        }
        for res in sorted(resources.values(), key=lambda x: x.name)
        if res.kind == "Agent"
    ]
    specs = [(res.name, res.spec) for res in resources.values() if res.kind == "Agent"]
    head_applied = head is not None and _head_applied(r, repo)
    return StatusReport(
        mission=mission.name if mission else None,
        mode=mission.spec.get("mode") if mission else None,
        applied_commit=r.applied_commit(),
        head=head,
        head_applied=head_applied,
        serial=r.serial(),
        tasks=r.task_counts(),
        pending=r.pending(),
        agents=agents,
        dirty=repo.dirty_paths() if head else [],
        attention=[
            {"task": t.name, "state": t.state, "reason": t.reason}
            for t in r.tasks_in(sorted(ATTENTION), limit=20)
        ],
        overrides={
            k: {"value": v[0], "actor": v[1], "reason": v[2], "since": v[3]}
            for k, v in r.overrides().items()
        },
        exposure=exposure(specs, mission_spec),
        runs_in_flight=len(r.runs(states=IN_FLIGHT)),
        head_error=None if head is None or head_applied else head_error(r, head),
    )


def head_error(r: StateReader, head: str) -> dict[str, str] | None:
    """Why `mc serve` could not apply HEAD (its `reconcile.error` event for that commit): the
    first line of the reason, and what to do about it."""
    event = r.latest_event("reconcile.error", head)
    if event is None:
        return None
    errors = [str(e) for e in event.data.get("errors") or [event.data.get("reason", "error")]]
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    reason = (errors[0].splitlines() or ["error"])[0] + more
    if "stage" in event.data:  # a fault inside the loop, not a bad commit
        fix = "mc serve retries on the next commit or resync; its log has the details"
    else:
        fix = "fix it and commit again (`mc validate` lists every problem)"
    return {"reason": reason, "fix": fix}


def head_tag(report: StatusReport) -> str | None:
    """The note after HEAD in `mc status`: None when HEAD is applied and nothing waits."""
    if report.head is None or report.head_applied:
        return None
    waiting = len(report.pending)
    if waiting and (
        report.applied_commit == report.head or any(p.commit == report.head for p in report.pending)
    ):  # HEAD was applied as far as the policy allows; the rest waits for approvals
        return f"HEAD applied; {waiting} action(s) wait for approval: mc approvals"
    return "HEAD not applied"


def undriven(report: StatusReport) -> str | None:
    """The warning when runs are in flight in a state no process holds (read straight from the
    file, so no `mc apply` or `mc serve` is driving them)."""
    n = report.runs_in_flight
    if not n:
        return None
    return (
        f"{n} run(s) in flight, but no mc process is driving them:"
        " run `mc apply` or `mc serve` to recover them"
    )


def _head_applied(r: StateReader, repo: MissionRepo) -> bool:
    """A commit that changes no spec (a README, a revert, an empty commit) leaves HEAD applied,
    although `mc apply` had nothing to record for it."""
    try:
        desired = repo.desired("HEAD", report_dirty=False)
    except MCError:
        return False  # HEAD does not parse, so it cannot have been applied
    return matches_applied(desired, r.resource_digests())


def status_to_json(report: StatusReport) -> dict[str, Any]:
    """The stable `mc status --json` shape (README)."""
    return {
        "mission": report.mission,
        "mode": report.mode,
        "applied_commit": report.applied_commit,
        "head": report.head,
        "head_applied": report.head_applied,
        "state_serial": report.serial,
        "tasks": report.tasks,
        "agents": report.agents,
        "pending": [
            {
                "target": p.key,
                "action": p.action,
                "digest": p.digest,
                "risk": p.risk,
                "reason": p.reason,
                "commit": p.commit,
                "since": p.since.isoformat(),
            }
            for p in report.pending
        ],
        "uncommitted": report.dirty,
        "attention": report.attention,
        "overrides": {
            k: {**v, "since": v["since"].isoformat()} for k, v in report.overrides.items()
        },
        "sandbox": exposure_to_json(report.exposure),
        "runs_in_flight": report.runs_in_flight,
        "head_error": report.head_error,
    }


def status_from_json(data: dict[str, Any]) -> StatusReport:
    """Back from the JSON shape (a status read through `mc serve`)."""
    return StatusReport(
        mission=data["mission"],
        mode=data["mode"],
        applied_commit=data["applied_commit"],
        head=data["head"],
        head_applied=data["head_applied"],
        serial=data["state_serial"],
        tasks=data["tasks"],
        pending=[
            PendingAction(
                p["target"],
                p["action"],
                p["digest"],
                p["risk"],
                p["reason"],
                p["commit"],
                datetime.fromisoformat(p["since"]),
            )
            for p in data["pending"]
        ],
        agents=data["agents"],
        dirty=data["uncommitted"],
        attention=data["attention"],
        overrides={
            k: {**v, "since": datetime.fromisoformat(v["since"])}
            for k, v in data["overrides"].items()
        },
        exposure=exposure_from_json(data["sandbox"]),
        runs_in_flight=data.get("runs_in_flight", 0),
        head_error=data.get("head_error"),
    )


def event_to_json(e: Event) -> dict[str, Any]:
    return {
        "seq": e.seq,
        "time": e.time.isoformat(),
        "actor": e.actor,
        "kind": e.kind,
        "subject": e.subject,
        "data": e.data,
        "commit": e.commit,
    }


def event_from_json(d: dict[str, Any]) -> Event:
    return Event(
        d["seq"],
        datetime.fromisoformat(d["time"]),
        d["actor"],
        d["kind"],
        d["subject"],
        d["data"],
        d["commit"],
    )


def events(ctx: MissionContext, since: datetime | None, limit: int) -> list[Event]:
    with ctx.read_state() as state:
        return state.reader.events(since=since, limit=limit)
