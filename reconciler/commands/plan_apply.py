"""`mc validate`, `mc plan` and `mc apply` (now, or a saved plan file); called by cli/main.py."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from reconciler.commands.context import MissionContext
from reconciler.commands.reads import WriteQueue, holding
from reconciler.plan.actions import Plan
from reconciler.plan.apply import ApplyResult, StalePlan, check_fresh
from reconciler.plan.codec import plan_from_json, plan_to_json
from reconciler.plan.pipeline import CommitPlan, UntrustedHead, plan_commit
from specs.desired import Desired
from specs.errors import MCError
from state.store import State

HOLDER = "mc apply"  # how reads answered by this command name their source

if TYPE_CHECKING:  # the execution engine loads only when a command drives the work
    from reconciler.engine.until_idle import Converged, Progress


def validate(ctx: MissionContext, rev: str | None) -> Desired:
    return ctx.repo.desired(rev)


def make_plan(ctx: MissionContext, rev: str | None, trust_anew: bool = False) -> CommitPlan:
    desired = ctx.repo.desired(rev)  # spec errors first, before any state is read
    with ctx.read_state() as state:
        return plan_commit(state.reader, ctx.repo, desired, ctx.clock(), trust_anew)


def save_plan(plan: Plan, path: Path) -> None:
    path.write_text(json.dumps(plan_to_json(plan), indent=2, default=str) + "\n")


def load_plan(path: Path) -> Plan:
    try:
        data = json.loads(path.read_text())
        return plan_from_json(data)
    except OSError as exc:
        raise MCError(f"{path}: cannot read plan ({exc.strerror})") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise MCError(f"{path}: not a valid plan file ({exc})") from None


@dataclass(frozen=True)
class Drive:
    """How `mc apply` follows the work after applying (None: record only, `--no-wait`)."""

    progress: Progress | None = None
    should_stop: Callable[[], bool] = lambda: False


@dataclass(frozen=True)
class Applied:
    plan: Plan
    result: ApplyResult | None  # None: nothing to apply, or the person said no
    converged: Converged | None = None


def apply_saved(
    ctx: MissionContext, path: Path, actor: str, drive: Drive | None, trust_anew: bool = False
) -> Applied:
    plan = load_plan(path)
    head = ctx.repo.resolve("HEAD") if plan.commit else None
    with ctx.read_state() as state:
        check_fresh(plan, head, state.reader.serial())  # refuse before taking the write lock
    assert plan.commit is not None
    desired = ctx.repo.desired(plan.commit)
    with ctx.write_state() as state, holding(ctx, state, HOLDER, drive is not None) as queue:
        # The file is only checksummed: trust nothing in it that planning would not produce
        # again now, so an edited status ("apply" for an unapproved action) is refused.
        again = plan_commit(state.reader, ctx.repo, desired, ctx.clock(), trust_anew)
        if again.plan.digest != plan.digest:
            raise StalePlan(
                f"{path}: planning commit {plan.commit[:12]} again gives a different plan"
                " (approvals changed, or the file was edited); run `mc plan` again"
            )
        result = again.apply(state, ctx.clock(), actor)
        return Applied(plan, result, _drive(ctx, state, drive, queue))


def apply_now(
    ctx: MissionContext,
    actor: str,
    confirm: Callable[[Plan], bool],
    drive: Drive | None,
    trust_anew: bool = False,
) -> Applied:
    """Plan against HEAD, show it (via confirm), apply it and drive the work, under one lock.
    Raises UntrustedHead, before asking or writing, when git history does not back HEAD's
    approvers and no Mission is applied (`trust_anew` trusts them anyway)."""
    desired = ctx.repo.desired("HEAD")
    with ctx.write_state() as state, holding(ctx, state, HOLDER, drive is not None) as queue:
        found = plan_commit(state.reader, ctx.repo, desired, ctx.clock(), trust_anew)
        plan = found.plan
        if plan.trust is not None and plan.trust.refused:
            raise UntrustedHead(plan.trust)
        if plan.actions and not confirm(plan):
            return Applied(plan, None)
        result = found.apply(state, ctx.clock(), actor) if plan.actions else None
        return Applied(plan, result, _drive(ctx, state, drive, queue))


def _drive(
    ctx: MissionContext, state: State, drive: Drive | None, queue: WriteQueue
) -> Converged | None:
    if drive is None:
        return None
    from reconciler.engine.until_idle import converge

    return converge(
        ctx.repo,
        state,
        ctx.clock,
        drive.progress,
        drive.should_stop,
        between_ticks=lambda: queue.drain(state, ctx),
    )
