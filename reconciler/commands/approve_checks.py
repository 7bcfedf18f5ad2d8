"""Before `mc approve` signs anything: refuse what cannot work, and warn about approvals that
will be recorded but not count (a signing key no approver declares, a second decision by the
same approver on the same content). Called by cli/governance.py; reads go through
commands/reads.py, so they work while `mc apply` or `mc serve` holds the state.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reconciler.commands import reads
from reconciler.commands.approvals import _git, target_digest
from reconciler.commands.context import MissionContext
from reconciler.tasks.lifecycle import TERMINAL
from specs.errors import MCError

MAX_FEEDBACK = 4000  # characters of feedback; it lands in task.json and in the audit log


@dataclass(frozen=True)
class Preflight:
    """What one target's approval will name, and the warnings to show before signing."""

    target: str
    digest: str
    warnings: list[str]
    approver: str | None = None  # the declared approver whose key signs (None: not known)


def preflight(
    ctx: MissionContext, targets: Sequence[str], decision: str, reason: str
) -> list[Preflight]:
    """Check every target first (nothing is signed if one is refused). Reads go through the
    state's holder when there is one; a target HEAD does not declare is refused from the
    commit alone (or, when it is being deleted, checked against the plan)."""
    if not targets:
        raise MCError("name at least one target, e.g. `mc approve Task/deploy`")
    if decision == "request_changes":
        _check_feedback(reason)
    me = signer(ctx)
    decided = reads.read(ctx, "approvals").body["decided"] if me.approver else []
    planned = _Planned(ctx)
    found = []
    for target in dict.fromkeys(targets):
        digest = target_digest(ctx, target, planned.deleted)
        task = _task_view(ctx, target)
        in_review = task is not None and task["state"] == "REVIEW"
        if decision == "request_changes" and not in_review:
            _refuse_outside_review(ctx, target)
        warnings: list[str | None] = [] if me.approver else [me.warning]
        if not in_review:  # a review is a new decision on the same content, not a duplicate
            warnings += duplicate_warnings(decided, target, digest, me.approver, decision)
            if decision != "request_changes":
                warnings.append(idle_warning(target, planned.gated(), task))
        approver = me.approver if me.approver != "?" else None
        found.append(Preflight(target, digest, [w for w in warnings if w], approver))
    return found


class _Planned:
    """HEAD's plan as the state's holder (or the state file) sees it, asked for once."""

    def __init__(self, ctx: MissionContext) -> None:
        self.ctx = ctx
        self._actions: list[dict[str, Any]] | None = None

    def actions(self) -> list[dict[str, Any]]:
        if self._actions is None:
            self._actions = list(reads.read(self.ctx, "plan").body["actions"])
        return self._actions

    def deleted(self, target: str) -> str | None:
        """The applied digest a planned delete of `target` removes (None: no such delete)."""
        for a in self.actions():
            if f"{a['kind']}/{a['name']}" == target and a["action"] == "delete":
                return str(a["old_digest"])
        return None

    def gated(self) -> set[str]:
        """Targets with a planned change that needs approvals."""
        return {f"{a['kind']}/{a['name']}" for a in self.actions() if a["approvals_needed"]}


def idle_warning(target: str, gated: set[str], task: Mapping[str, Any] | None) -> str | None:
    """The warning for an approval nothing waits for: no planned change to the target needs
    one, and (for a task) no dispatch gate or review does either. None when it may count."""
    if target in gated:
        return None
    kind, _, name = target.partition("/")
    nothing = f"{target}: nothing waits for this approval"
    tail = "; it will be recorded but change nothing"
    if kind == "Task":
        if task is None:
            return None  # not applied yet: its gate is not known before `mc apply`
        state = task["state"]
        if state == "REVIEW" or (task["approvals"]["gated"] and state not in TERMINAL):
            return None
        why = f"it is {state}" if state in TERMINAL else f"{state} and not gated"
        return f"{nothing} ({why}, and no planned change to it needs one){tail}"
    if kind == "WorkflowRun":
        return (
            f"{nothing} (no planned change to it needs one; a workflow run's steps are"
            f" approved one by one: Task/{name}.STEP){tail}"
        )
    return f"{nothing} (no planned change to it needs one){tail}"


def _check_feedback(reason: str) -> None:
    if not reason.strip():
        raise MCError('--request-changes needs the feedback: --request-changes "what to fix"')
    if len(reason) > MAX_FEEDBACK:
        raise MCError(f"--request-changes: keep the feedback under {MAX_FEEDBACK} characters")


def _task_view(ctx: MissionContext, target: str) -> dict[str, Any] | None:
    """`mc task NAME --json` of a task target (None: not a task, or not applied yet)."""
    kind, _, name = target.partition("/")
    if kind != "Task":
        return None
    try:
        body: dict[str, Any] = reads.read(ctx, "task", {"name": name}).body
    except MCError:
        return None
    return body


def _task_state(ctx: MissionContext, target: str) -> str | None:
    """The state of a task target (None: not a task, or not applied yet)."""
    task = _task_view(ctx, target)
    return str(task["state"]) if task is not None else None


def _refuse_outside_review(ctx: MissionContext, target: str) -> None:
    if not target.startswith("Task/"):
        raise MCError(f"{target}: changes can be requested only on a task (Task/NAME)")
    state = _task_state(ctx, target) or "not applied"
    raise MCError(
        f"{target} is {state}: changes can be requested only while it waits in REVIEW"
        " (`mc retry` requeues a FAILED or BLOCKED task)"
    )


@dataclass(frozen=True)
class Signer:
    """Which declared approver the configured signing key belongs to (None: none)."""

    approver: str | None
    warning: str


def signer(ctx: MissionContext) -> Signer:
    """Match `user.signingkey` (SSH) against the approvers HEAD's mission.yaml declares."""
    if (_git(ctx, "config", "gpg.format", check=False) or "openpgp") != "ssh":
        return Signer("?", "")  # GPG: only git's own check can tell; no warning either way
    key = ssh_key_text(_git(ctx, "config", "user.signingkey", check=False) or "")
    approvers = _declared(ctx)
    name = key_owner(key, approvers) if key else None
    if name is not None:
        return Signer(name, "")
    shown = f"{key[0]} …{key[1][-12:]}" if key else "(unreadable)"
    return Signer(
        None,
        f"your signing key {shown} is not declared by any approver in mission.yaml:"
        " this approval will be recorded as rejected and will not count",
    )


def ssh_key_text(value: str) -> tuple[str, str] | None:
    """(type, base64) of the SSH public key `user.signingkey` names: a `key::` literal, a
    literal key, or a key file (its `.pub` beside it for a private key)."""
    text = value.removeprefix("key::").strip()
    if not text.startswith(("ssh-", "ecdsa-", "sk-")):
        path = Path(text).expanduser()
        pub = path if path.suffix == ".pub" else path.with_name(path.name + ".pub")
        try:
            text = pub.read_text(errors="replace").strip()
        except OSError:
            return None
    parts = text.split()
    return (parts[0], parts[1]) if len(parts) >= 2 else None


def key_owner(key: tuple[str, str], approvers: Mapping[str, Iterable[str]]) -> str | None:
    """The approver declaring this SSH key, if any."""
    for name, keys in approvers.items():
        for declared in keys:
            parts = declared.split()
            if len(parts) >= 2 and (parts[0], parts[1]) == key:
                return name
    return None


def _declared(ctx: MissionContext) -> dict[str, list[str]]:
    desired = ctx.repo.desired("HEAD", report_dirty=False)
    mission = next((d for d in desired.docs.values() if d.kind == "Mission"), None)
    approvers: list[dict[str, Any]] = mission.spec.get("approvers", []) if mission else []
    return {a["name"]: list(a.get("ssh_keys", [])) for a in approvers}


def duplicate_warnings(
    decided: Iterable[Mapping[str, Any]],
    target: str,
    digest: str,
    approver: str | None,
    decision: str,
) -> list[str]:
    """Warnings for a decision this approver already made on exactly this content."""
    if approver in (None, "?"):
        return []
    mine = [
        d
        for d in decided
        if d["target"] == target
        and d["digest"] == digest
        and d["approver"] == approver
        and d["status"] == "accepted"
    ]
    if any(d["decision"] == "deny" for d in mine) and decision != "deny":
        return [
            f"{approver} already denied this content of {target}; a deny is final until the"
            " content changes, so this will not count"
        ]
    same = [d for d in mine if d["decision"] == decision]
    if same and decision != "request_changes":
        return [
            f"{approver} already decided {decision} on this content of {target}"
            f" ({same[0]['at'][:19]}); a second decision by the same approver counts once"
        ]
    return []
