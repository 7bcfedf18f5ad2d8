"""`mc runs`, `mc agents`, `mc logs`, `mc memory`, `mc drops`: what the agents did and hold."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from cli.ansi import terminal_safe
from cli.main import JsonOpt, app, mission_context, out
from cli.reading import read
from cli.render import Note, id_column, money, print_rows, when
from reconciler.commands import reads
from reconciler.runtime.nofollow import NOT_REGULAR, read_part


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
    found = read("runs", {"task": task, "limit": str(limit)})
    if as_json:
        sys.stdout.write(json.dumps(found, indent=2) + "\n")
        return
    table = Table(id_column("run"), "task", "attempt", "agent", "state", "status", "cost", "error")
    for r in found:
        table.add_row(
            r["id"],
            escape(r["task"]),
            str(r["attempt"]),
            r["agent"],
            r["state"],
            r["status"] or "-",
            money(r["cost_usd"]),
            escape(_clip(r["error"] or "", 80)),
        )
    out.print(table)


def _workflow_runs(as_json: bool) -> None:
    found = read("workflow-runs")
    if as_json:
        sys.stdout.write(json.dumps(found, indent=2, default=str) + "\n")
        return
    table = Table("workflow run", "workflow", "status", "inputs", "started")
    for r in found:
        inputs = ", ".join(f"{k}={v}" for k, v in r["inputs"].items())
        table.add_row(
            escape(r["name"]),
            escape(r["workflow"]),
            r["status"],
            escape(inputs[:60]),
            when(r["created_at"]),
        )
    out.print(table)


@app.command()
def agents(as_json: JsonOpt = False) -> None:
    """Agents: effective status (quarantines included), load, spend today, recent failures."""
    found = read("agents")
    if as_json:
        sys.stdout.write(json.dumps(found, indent=2) + "\n")
        return
    table = Table("agent", "status", "load", "spent today", "recent failures", "why")
    for a in found:
        cap = f" / {money(a['daily_cap'])}" if a["daily_cap"] is not None else ""
        table.add_row(
            escape(a["name"]),
            a["status"],
            f"{a['running']}/{a['concurrency']}",
            f"{money(a['spent_today'])}{cap}",
            f"{a['recent_failures']}/{a['recent_runs']}",
            escape(a["reason"] or ""),
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
    run = read("run", {"target": target})
    run_id, where = run["id"], Path(run["workspace"]) if run["workspace"] else None
    if where is None:
        sys.stderr.write("(no output captured)\n")
        raise typer.Exit(0)
    names = {"stdout": ["stdout.log"], "stderr": ["stderr.log"]}.get(
        stream, ["stdout.log", "stderr.log"]
    )
    files = [where / n for n in names]
    offsets = {f: 0 for f in files}
    while True:
        for f in files:
            offsets[f] = _print_from(f, offsets[f], label=len(files) > 1, raw=raw)
        if not follow or _finished(run_id):
            break
        time.sleep(0.25)
    if not any(offsets.values()):  # on stderr: `mc logs X > file` holds only what it printed
        sys.stderr.write("(no output captured)\n")


def _finished(run_id: str) -> bool:
    """A run has ended when the state (or the process holding it) says so."""
    return bool(reads.read(mission_context(), "run", {"target": run_id}).body["ended_at"])


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
    values = read("memory", {"agent": agent})
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
    found = read("drops", {"task": task})
    if as_json:
        sys.stdout.write(json.dumps(found, indent=2) + "\n")
        return
    head = ("path", "media type", "size", "sha256", "run")
    rows = [
        (d["path"], d["media_type"], str(d["size"]), d["sha256"][:16], d["run_id"]) for d in found
    ]
    print_rows(out, head, rows, [Note("stored at", d["file"]) for d in found])
