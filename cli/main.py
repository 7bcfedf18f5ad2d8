"""The `mc` Typer app: each command parses options, makes one call and renders the answer."""

from __future__ import annotations

import gc
import getpass
import json
import os
import re
import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from cli import render
from reconciler.commands import plan_apply as ops
from reconciler.commands import status as status_ops
from reconciler.commands.context import MissionContext
from reconciler.plan.actions import Plan
from reconciler.plan.codec import plan_from_json, plan_to_json
from specs.errors import MCError
from specs.fields import DURATION_PATTERN
from specs.time_math import before
from state.errors import StateLocked

app = typer.Typer(
    name="mc",
    help="Mission Control: declare agents, tasks and workflows in git; `mc plan`, `mc apply`.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",  # a docstring's line breaks are not kept in `--help`
)
out = Console(highlight=False, soft_wrap=True)  # never break paths or ids mid-word
err = Console(stderr=True, highlight=False)

RevOpt = Annotated[str, typer.Option("--rev", help="Read the desired state from this commit.")]
WorktreeOpt = Annotated[
    bool, typer.Option("--worktree", help="Preview uncommitted edits (not appliable).")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output (stable shape).")]
TrustAnewOpt = Annotated[
    bool,
    typer.Option(
        "--trust-anew",
        help="With no mission applied (a new or lost state): trust the approvers HEAD declares"
        " instead of those mission.yaml's git history backs.",
    ),
]


class Globals:
    repo: Path = Path(".")
    state: Path | None = None


def mission_context() -> MissionContext:
    return MissionContext.at(Globals.repo, Globals.state)


def actor() -> str:
    return f"cli:{getpass.getuser()}"


@app.callback()
def main(
    repo: Annotated[
        Path, typer.Option("--repo", "-C", help="The mission repo (default: current directory).")
    ] = Path("."),
    state: Annotated[
        Path | None,
        typer.Option(
            "--state", envvar="MC_STATE", help="State file (default: REPO/.mc/state.duckdb)."
        ),
    ] = None,
) -> None:
    """Mission Control: a GitOps reconciler for AI-agent work."""
    Globals.repo = repo
    Globals.state = state


@app.command()
def init(
    directory: Annotated[Path, typer.Argument(help="Where to create the mission repo.")],
) -> None:
    """Scaffold a mission repo with one working example and commit it."""
    from reconciler.commands.init import scaffold

    commit = scaffold(directory)
    out.print(f"Created mission repo in {directory} (commit {commit[:12]}).")
    out.print(f"Next: cd {directory} && mc plan && mc apply")


@app.command()
def validate(rev: RevOpt = "HEAD", worktree: WorktreeOpt = False) -> None:
    """Check every mission file; print each problem as file:line:col: message (and, for a
    valid mission, each warning the same way on stderr)."""
    from reconciler.commands.lint import validation_warnings

    ctx = mission_context()
    desired = ops.validate(ctx, None if worktree else rev)
    for warning in validation_warnings(ctx, desired):
        err.print(f"[yellow]warning:[/] {escape(str(warning))}", soft_wrap=True)
    counts: dict[str, int] = {}
    for doc in desired.docs.values():
        counts[doc.kind] = counts.get(doc.kind, 0) + 1
    summary = ", ".join(f"{v} {k}" for k, v in sorted(counts.items()))
    where = f"commit {desired.commit[:12]} ({rev})" if desired.commit else "the work tree"
    out.print(f"[green]Valid.[/] {summary} (checked {where})")
    if desired.dirty_paths:
        shown = ", ".join(desired.dirty_paths[:5]) + (" …" if len(desired.dirty_paths) > 5 else "")
        out.print(
            f"[yellow]Note:[/] uncommitted changes were not checked: {escape(shown)}"
            " (commit them, or check them with --worktree)"
        )


@app.command()
def plan(
    rev: RevOpt = "HEAD",
    worktree: WorktreeOpt = False,
    as_json: JsonOpt = False,
    out_file: Annotated[
        Path | None, typer.Option("--out", help="Save the plan for `mc apply FILE`.")
    ] = None,
    detailed_exitcode: Annotated[
        bool,
        typer.Option("--detailed-exitcode", help="Exit 0: no changes, 2: changes, 1: error."),
    ] = False,
    trust_anew: TrustAnewOpt = False,
) -> None:
    """Show what `mc apply` would change, with risk and approvals per action."""
    ctx = mission_context()
    try:
        report = ops.make_plan(ctx, None if worktree else rev, trust_anew)
        found, dirty = report.plan, list(report.desired.dirty_paths)
    except StateLocked:  # `mc apply` or `mc serve` holds the state: it makes the plan
        from cli.reading import read

        params = {"worktree": "1"} if worktree else {"rev": rev}
        body = read("plan", {**params, "trust_anew": "1" if trust_anew else None})
        found, dirty = plan_from_json(body), body.get("uncommitted", [])
    if out_file is not None:
        if found.commit is None:
            raise MCError("a --worktree plan cannot be saved: commit your edits and plan again")
        ops.save_plan(found, out_file)
    if as_json:
        body = plan_to_json(found)
        body["uncommitted"] = dirty
        sys.stdout.write(json.dumps(body, indent=2, default=str) + "\n")
    else:
        render.print_plan(found, dirty)
        if out_file is not None:
            out.print(f"\nSaved to {out_file}; apply exactly this with `mc apply {out_file}`.")
    if detailed_exitcode and found.actions:
        raise typer.Exit(2)


@app.command()
def apply(
    plan_file: Annotated[
        Path | None, typer.Argument(help="A plan saved by `mc plan --out`.")
    ] = None,
    auto_approve: Annotated[
        bool, typer.Option("--auto-approve", help="Apply without asking for confirmation.")
    ] = False,
    no_wait: Annotated[
        bool, typer.Option("--no-wait", help="Only record the changes; do not drive the work.")
    ] = False,
    trust_anew: TrustAnewOpt = False,
) -> None:
    """Apply the plan (LOW risk now, the rest waits for approvals), then drive the work until
    nothing more can happen without a person. Ctrl-C or SIGTERM stops cleanly (running agents
    stopped, exit 130 or 143); `mc apply` carries on."""
    from cli.live import LiveView, Stopper

    ctx = mission_context()
    view, stopper = LiveView(out, ctx.clock()), Stopper()
    drive = None if no_wait else ops.Drive(progress=view, should_stop=stopper)
    try:
        with stopper.installed():
            if plan_file is not None:
                done = ops.apply_saved(ctx, plan_file, actor(), drive, trust_anew)
                render.print_plan(done.plan)
            else:
                done = ops.apply_now(
                    ctx, actor(), lambda p: _confirm(p, auto_approve), drive, trust_anew
                )
    finally:
        view.close()
    result = done.result
    if result is None and done.plan.actions:
        out.print("Apply canceled.")
        return
    if result is None:
        out.print("No changes to apply.")
    else:
        out.print(
            f"\n[green]Apply complete.[/] {len(result.applied)} applied,"
            f" {len(result.pending)} waiting for approval, {len(result.refused)} blocked;"
            f" state serial {result.serial}."
        )
        if result.pending:
            out.print("See `mc status` for what is waiting and why.")
    if done.converged is not None:
        render.print_converged(out, done.converged)
        if done.converged.interrupted:
            raise typer.Exit(stopper.exit_code)


def _confirm(plan: Plan, auto_approve: bool) -> bool:
    render.print_plan(plan)
    if auto_approve:
        return True
    if not sys.stdin.isatty():
        raise MCError(
            "refusing to apply without confirmation: run in a terminal or pass --auto-approve"
        )
    answer = typer.prompt(
        "\nApply these changes? Only 'yes' is accepted", default="", show_default=False
    )
    return bool(answer.strip() == "yes")


@app.command()
def status(as_json: JsonOpt = False) -> None:
    """Mission, applied commit, tasks by state, agents and pending approvals."""
    from cli.reading import note
    from reconciler.commands import reads

    found = reads.read(mission_context(), "status")
    note(found.source)
    report = status_ops.status_from_json(found.body)
    if as_json:
        sys.stdout.write(json.dumps(found.body, indent=2, default=str) + "\n")
        return
    render.print_status(out, report)
    warning = None if found.source else status_ops.undriven(report)  # a holder drives its runs
    if warning:
        out.print(f"[bold yellow]{escape(warning)}[/]")


@app.command()
def events(
    since: Annotated[
        str | None, typer.Option("--since", help="A duration (10m, 2h) or an ISO time.")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many.")] = 100,
    as_json: JsonOpt = False,
) -> None:
    """The audit log: what happened, who did it, and from which commit."""
    from cli.reading import read

    when = _since(since, mission_context().clock())
    params = {"limit": str(limit), "since": when.isoformat() if when else None}
    found = [status_ops.event_from_json(e) for e in read("events", params)]
    if as_json:
        sys.stdout.write(json.dumps([render.event_json(e) for e in found], indent=2) + "\n")
    else:
        render.print_events(out, found)


def _since(value: str | None, now: datetime) -> datetime | None:
    if value is None:
        return None
    if re.fullmatch(DURATION_PATTERN, value):
        return before(now, value)
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise MCError(f"--since {value!r}: use a duration such as 10m or an ISO time") from None


@app.command()
def schema() -> None:
    """Print the JSON Schema of mission files (for editors: yaml-language-server)."""
    from specs.schema import json_schema

    sys.stdout.write(json.dumps(json_schema(), indent=2) + "\n")


def fail(lines: list[str]) -> NoReturn:
    for line in lines:
        err.print(f"[red]error:[/] {escape(line)}", highlight=False, soft_wrap=True)
    raise SystemExit(1)


def _register() -> None:
    """Commands living in their own modules attach themselves to `app` on import."""
    import cli.bot
    import cli.doctor
    import cli.governance
    import cli.serve
    import cli.tasks
    import cli.trust
    import cli.work
    import cli.workflows  # noqa: F401


def _flags_without_type() -> None:
    """`--help` shows no `<bool>` type beside flags (Typer 0.29 prints one for every flag):
    a flag takes no value, so its type column stays empty."""
    import typer.core

    shown = typer.core.TyperOption.display_type_rich

    def display_type_rich(self: typer.core.TyperOption, ctx: Any) -> str | None:
        return None if self.is_flag else shown(self, ctx)

    typer.core.TyperOption.display_type_rich = display_type_rich  # type: ignore[method-assign]


def run() -> None:
    """Entry point: user errors print one line each and exit 1; tracebacks only with MC_DEBUG=1."""
    debug = os.environ.get("MC_DEBUG") == "1"
    # A short-lived CLI building ~10^5 small objects: a full collection would only find no
    # cycles, slowly (measured: a third of a warm 10k-task plan). `serve` restores the default.
    gc.set_threshold(200_000, 50, 50)
    _register()
    _flags_without_type()
    try:
        app(standalone_mode=True)
    except MCError as exc:
        if debug:
            raise
        fail(exc.lines())
    except KeyboardInterrupt:
        err.print("interrupted")
        raise SystemExit(130) from None
    except Exception as exc:  # a bug: say so plainly, keep the traceback for MC_DEBUG=1
        if debug:
            raise
        fail([f"internal error: {type(exc).__name__}: {exc} (rerun with MC_DEBUG=1 for details)"])
