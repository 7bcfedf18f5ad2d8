"""`mc approve`, `mc approvals` and `mc explain`; called by cli/governance.py."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import yaml

from reconciler.commands.context import MissionContext
from reconciler.commands.pending import pending_approvals
from reconciler.plan.actions import PlannedAction
from reconciler.plan.pipeline import plan_commit
from reconciler.repo.git import GitError, run_git
from reconciler.repo.source import MissionRepo
from specs.errors import MCError
from specs.fields import NAME_PATTERN
from state.dashboard import DashboardReader
from state.records import ApprovalRow, PendingAction
from state.store import StateReader

if TYPE_CHECKING:
    from reconciler.engine.why import Why

TARGET = re.compile(r"^(Mission|Agent|Task|Workflow|WorkflowRun)/([a-z0-9][-a-z0-9.]*)$")
SIGNING_HELP = (
    "no commit signing key is configured, and an approval only counts in a signed commit;"
    " set one up, e.g. SSH: `git config gpg.format ssh && git config user.signingkey"
    " ~/.ssh/id_ed25519.pub`, or GPG: `git config user.signingkey <KEYID>`"
)


@dataclass(frozen=True)
class Approved:
    path: str
    digest: str
    commit: str


DeletedDigest = Callable[[str], str | None]  # target -> the applied digest a delete removes


def target_digest(ctx: MissionContext, target: str, deleted: DeletedDigest | None = None) -> str:
    """What an approval must name: the committed content of the target (or, for something
    deleted in git, the content being deleted; for a workflow step, its run). Only a target
    HEAD does not declare is looked up in the state, by `deleted` (default: the state file
    itself; `mc approve` asks through the state's holder). Raises MCError for a malformed
    target, or one neither declared at HEAD nor being deleted."""
    match = TARGET.match(target)
    if match is None:
        raise MCError(f"{target!r}: expected Kind/name, e.g. Task/deploy or Agent/writer")
    kind, name = match.groups()
    desired = ctx.repo.desired("HEAD")
    doc = desired.get(kind, name)
    if doc is not None:
        return doc.digest
    if kind == "Task" and "." in name:
        run = desired.get("WorkflowRun", name.split(".", 1)[0])
        if run is not None:
            return run.digest
    found = (deleted or (lambda key: _applied_digest(ctx, key)))(target)
    if found is None:
        raise MCError(f"{target}: not declared at HEAD and never applied; nothing to approve")
    return found


def _applied_digest(ctx: MissionContext, target: str) -> str | None:
    kind, _, name = target.partition("/")
    with ctx.read_state() as state:
        applied = state.reader.resource(kind, name)
    return applied.digest if applied is not None else None


DECISIONS = {
    "approve": ("ok", "Approve"),
    "deny": ("deny", "Deny"),
    "request_changes": ("changes", "Request changes on"),
}


def approve(
    ctx: MissionContext,
    target: str,
    decision: str,
    reason: str,
    digest: str | None = None,
    approver: str | None = None,
) -> Approved:
    """Write approvals/<file>.yaml for the target's digest and commit it signed. `decision`:
    approve | deny | request_changes (its `reason` is the feedback the agent gets). `digest`:
    as checked beforehand (None: looked up now). The file is named after `approver`, the
    declared approver whose key signs, else after git's user.name."""
    if not _git(ctx, "config", "user.signingkey", check=False):
        raise MCError(SIGNING_HELP)
    digest = digest or target_digest(ctx, target)
    named = approver or _git(ctx, "config", "user.name", check=False) or "me"
    who = re.sub(r"[^a-z0-9]+", "-", named.lower())
    name = _name(target, digest, who.strip("-") or "me", decision, ctx.clock())
    rel = f"approvals/{name}.yaml"
    doc = {
        "apiVersion": "mc/v1",
        "kind": "Approval",
        "metadata": {"name": name},
        "spec": {
            "target": target,
            "digest": digest,
            "decision": decision,
            "reason": reason,
        },
    }
    path = ctx.repo.root / rel
    path.parent.mkdir(exist_ok=True)
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    verb = DECISIONS[decision][1]
    _git(ctx, "add", "--", rel)
    try:
        _git(ctx, "commit", "-S", "-m", f"{verb} {target} ({digest[:19]})", "--", rel)
    except MCError as exc:
        _git(ctx, "reset", "-q", "--", rel, check=False)
        path.unlink(missing_ok=True)
        raise MCError(f"signing the approval commit failed: {exc}") from None
    return Approved(rel, digest, _git(ctx, "rev-parse", "HEAD") or "")


def _name(target: str, digest: str, who: str, decision: str, now: datetime) -> str:
    prefix = DECISIONS[decision][0]
    base = f"{prefix}-{target.replace('/', '-').replace('.', '-').lower()}"
    # a new file every time: approving the same content again (say, after a review) must be
    # a new signed commit, not a rewrite of an older file that leaves nothing to commit
    tag = hashlib.sha256(f"{target}{digest}{who}{now.isoformat()}".encode()).hexdigest()[:8]
    name = f"{base[:40].strip('-')}-{who[:12].strip('-')}-{tag}"
    assert re.match(NAME_PATTERN, name), name
    return name


def _git(ctx: MissionContext, *args: str, check: bool = True) -> str | None:
    """git as the user, through repo/git.py: the signed commit may use the signing program of
    the user's global config and their agents, never a hook or program the repo names."""
    try:
        return run_git(ctx.repo.root, *args, check=check, signing=args[0] == "commit")
    except GitError as exc:
        raise MCError(str(exc)) from None


@dataclass(frozen=True)
class ApprovalsReport:
    pending: list[PendingAction]
    waiting_tasks: list[dict[str, Any]]
    decided: list[ApprovalRow]


def approvals(r: StateReader) -> ApprovalsReport:
    """What waits for an approval, and every decision with its evidence."""
    found = pending_approvals(r)  # the dashboard and the bot's /pending list the same
    waiting = [{"task": t.name, "state": t.state, "reason": t.reason} for t in found.tasks]
    return ApprovalsReport(found.actions, waiting, r.approvals())


@dataclass(frozen=True)
class Explanation:
    target: str
    action: PlannedAction | None
    dispatch: tuple[str, str] | None  # (risk, rule) for tasks
    why: Why | None = None  # for tasks: why it is not running (engine/why.py)
    gate: str | None = None  # for tasks: what gates its dispatch (engine/why.gate_text)


def explain(
    r: StateReader,
    dash: DashboardReader,
    repo: MissionRepo,
    target: str,
    now: datetime,
    driven: bool = True,
) -> Explanation:
    """The policy decision for a resource's planned change; for a task, also its dispatch
    risk and why it is not running."""
    from reconciler.commands.task_views import engine_view, named_why
    from reconciler.engine.approval_gates import dispatch_risk
    from reconciler.engine.why import gate_text

    desired = repo.desired("HEAD")
    plan = plan_commit(r, repo, desired, now).plan
    dispatch, waiting, gated = None, None, None
    if target.startswith("Task/"):
        world = engine_view(r, now)
        task = world.tasks.get(target[5:]) if world else None
        if world is not None and task is not None:
            dispatch = dispatch_risk(world, task)
            waiting = named_why(dash, world, task, now, driven)
            gated = gate_text(task, *dispatch)
    action = next((a for a in plan.actions if a.key == target), None)
    if action is None and dispatch is None and desired.docs.get(target) is None:
        raise MCError(f"{target}: not declared at HEAD and not in the state")
    return Explanation(target, action, dispatch, waiting, gated)
