"""`mc runs`, `mc agents`, `mc logs`, `mc memory`, `mc drops`: what the agents did and hold."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from cli.ansi import terminal_safe
from cli.main import JsonOpt, app, mission_context, out
from reconciler.commands import work as ops
from reconciler.commands.context import MissionContext
from reconciler.runtime.nofollow import NOT_REGULAR, read_part
from state.errors import StateLocked
from state.records import RunRow


def _run_json(r: RunRow) -> dict[str, Any]:
    return {
        "id": r.id,
        "task": r.task,
        "attempt": r.attempt,
        "agent": r.agent,
        "state": r.state,
        "status": r.status,
        "error_class": r.error_class,
        "error": r.error,
        "exit_code": r.exit_code,
        "pid": r.pid,
        "started_at": r.started_at.isoformat(),
        "ended_at": r.ended_at.isoformat() if r.ended_at else None,
        "cost_usd": str(r.cost_usd),
        "tokens": r.tokens,
        "workspace": r.workspace,
    }


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


@app.command()
def runs(
    task: Annotated[str | None, typer.Argument(help="Only this task's runs.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1)] = 50,
    workflow_runs: Annotated[
        bool, typer.Option("--workflow-runs", "-w", help="List workflow runs instead.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Agent runs (a run is one attempt at a task, numbered like its workspace), newest first,
    with how each ended and what it cost; with -w, workflow runs and their status instead."""
    if workflow_runs:
        _workflow_runs(as_json)
        return
    found = ops.runs(mission_context(), task, limit)
    if as_json:
        sys.stdout.write(json.dumps([_run_json(r) for r in found], indent=2) + "\n")
        return
    table = Table("run", "task", "attempt", "agent", "state", "status", "cost", "error")
    for r in found:
        table.add_row(
            r.id,
            escape(r.task),
            str(r.attempt),
            r.agent,
            r.state,
            r.status or "-",
            f"${r.cost_usd:.4f}",
            escape(_clip(r.error or "", 80)),
        )
    out.print(table)


def _workflow_runs(as_json: bool) -> None:
    from reconciler.commands.workflow_runs import workflow_runs

    found = workflow_runs(mission_context())
    if as_json:
        rows = [
            {
                "name": r.name,
                "workflow": r.workflow,
                "status": r.status,
                "inputs": r.inputs,
                "outputs": r.outputs,
                "workflow_digest": r.workflow_digest,
                "created_at": r.created_at.isoformat(),
            }
            for r in found
        ]
        sys.stdout.write(json.dumps(rows, indent=2, default=str) + "\n")
        return
    table = Table("workflow run", "workflow", "status", "inputs", "started")
    for r in found:
        inputs = ", ".join(f"{k}={v}" for k, v in r.inputs.items())
        table.add_row(
            r.name,
            r.workflow,
            r.status,
            escape(inputs[:60]),
            r.created_at.isoformat(timespec="seconds"),
        )
    out.print(table)


@app.command()
def agents(as_json: JsonOpt = False) -> None:
    """Agents: effective status (quarantines included), load, spend today, recent failures."""
    found = ops.agents(mission_context())
    if as_json:
        rows = [
            {
                **a.__dict__,
                "spent_today": str(a.spent_today),
                "daily_cap": str(a.daily_cap) if a.daily_cap is not None else None,
            }
            for a in found
        ]
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
        return
    table = Table("agent", "status", "load", "spent today", "recent failures", "why")
    for a in found:
        cap = f" / ${a.daily_cap:.2f}" if a.daily_cap is not None else ""
        table.add_row(
            a.name,
            a.status,
            f"{a.running}/{a.concurrency}",
            f"${a.spent_today:.4f}{cap}",
            f"{a.recent_failures}/{a.recent_runs}",
            escape(a.reason or ""),
        )
    out.print(table)


@app.command()
def logs(
    target: Annotated[str, typer.Argument(help="A run id, or a task name (its latest run).")],
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new output.")
    ] = False,
    stream: Annotated[str, typer.Option("--stream", help="stdout, stderr or both.")] = "both",
    raw: Annotated[
        bool,
        typer.Option(
            "--raw", help="Write the bytes as the agent printed them, escape sequences included."
        ),
    ] = False,
) -> None:
    """Print a run's captured stdout/stderr (secrets redacted, size-capped). Terminal escape
    sequences are removed and other control characters shown escaped, unless --raw."""
    ctx = mission_context()
    run_id: str | None
    try:
        run = ops.find_run(ctx, target)
        run_id, where = run.id, Path(run.workspace) if run.workspace else None
    except StateLocked:  # `mc apply` is driving: read the newest attempt straight from disk
        run_id, where = None, ops.latest_workspace(ctx, target)
        if where is None:
            raise
    if where is None:
        raise typer.Exit(0)
    names = {"stdout": ["stdout.log"], "stderr": ["stderr.log"]}.get(
        stream, ["stdout.log", "stderr.log"]
    )
    files = [where / n for n in names]
    offsets = {f: 0 for f in files}
    while True:
        for f in files:
            offsets[f] = _print_from(f, offsets[f], label=len(files) > 1, raw=raw)
        if not follow or _finished(ctx, target, run_id, where):
            break
        time.sleep(0.25)


def _finished(ctx: MissionContext, target: str, run_id: str | None, where: Path) -> bool:
    """A run has ended when the state says so or, while the state is busy, once its
    result.json is written."""
    try:
        run = ops.find_run(ctx, run_id or target)
    except StateLocked:
        return (where / "result.json").exists()
    return run.ended_at is not None or (run_id is None and run.workspace != str(where))


LOG_READ_LIMIT = 10 * 1024 * 1024 + 64 * 1024  # the pump's log cap, plus mc's own notes
LOG_CHUNK = 1024 * 1024


def _print_from(path: Path, offset: int, label: bool, raw: bool = False) -> int:
    """Print what the log holds past `offset`, at most up to LOG_READ_LIMIT, a chunk at a time;
    returns the new offset. A log the agent replaced by a link, FIFO or device is not read
    (a note on stderr says so, once: the offset returned is then -1)."""
    if offset < 0:
        return offset
    while offset < LOG_READ_LIMIT:
        read = read_part(path, min(LOG_CHUNK, LOG_READ_LIMIT - offset), start=offset)
        if read.kind == "missing":
            return offset
        if read.kind != "ok":
            sys.stderr.write(f"mc: {path} {NOT_REGULAR}; not shown\n")
            return -1
        if not read.data:
            return offset
        text = read.data.decode("utf-8", "replace")
        if not raw:
            text = terminal_safe(text)
        if label:
            text = "".join(f"[{path.stem}] {line}\n" for line in text.splitlines())
        sys.stdout.write(text)
        sys.stdout.flush()
        offset += len(read.data)
    return offset


@app.command()
def memory(
    agent: Annotated[str, typer.Argument(help="The agent whose memory to show.")],
    as_json: JsonOpt = False,
) -> None:
    """An agent's key/value memory, as handed to it in task.json."""
    found = ops.memory(mission_context(), agent)
    values = found.get(f"agent:{agent}", {})
    if as_json:
        sys.stdout.write(json.dumps(values, indent=2, default=str) + "\n")
        return
    if not values:
        out.print(f"Agent {agent} remembers nothing yet.")
    for key, value in values.items():
        out.print(f"{escape(key)} = {escape(json.dumps(value, ensure_ascii=False))}")


@app.command()
def drops(
    task: Annotated[str, typer.Argument(help="The task whose content drops to list.")],
    as_json: JsonOpt = False,
) -> None:
    """Files a task's agent left in out/, kept content-addressed under .mc/drops/."""
    found = ops.drops(mission_context(), task)
    if as_json:
        rows = [
            {
                "run_id": d.run_id,
                "path": d.path,
                "sha256": d.sha256,
                "size": d.size,
                "media_type": d.media_type,
                "file": str(f),
            }
            for d, f in found
        ]
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
        return
    table = Table("path", "media type", "size", "sha256", "run", "stored at")
    for d, f in found:
        table.add_row(escape(d.path), d.media_type, str(d.size), d.sha256[:16], d.run_id, str(f))
    out.print(table)
