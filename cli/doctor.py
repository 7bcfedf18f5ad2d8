"""`mc doctor`: what this machine has for mc; exit 1 when something required is missing."""

from __future__ import annotations

import json
import sys

import typer
from rich.markup import escape

from cli.main import JsonOpt, app, out
from reconciler.commands.doctor import Check, doctor, report_to_json

STATUS_STYLE = {"ok": "green", "missing": "red", "broken": "bold red"}


@app.command("doctor")
def doctor_command(as_json: JsonOpt = False) -> None:
    """Check this machine: git, bubblewrap and a real sandbox run, ssh-keygen, gpg, chromium,
    Ray and Python; what each is for and how to fix what is missing. Exit 1 when something
    required is missing or broken."""
    report = doctor()
    if as_json:
        sys.stdout.write(json.dumps(report_to_json(report), indent=2) + "\n")
    else:
        out.print("mc doctor: what this machine has for Mission Control\n")
        for check in report.checks:
            _print_check(check)
        verdict = "[green]Ready.[/]" if report.ok else "[bold red]Not ready:[/]"
        tail = "" if report.ok else " something required is missing or broken (see fix: above)."
        out.print(f"\n{verdict}{tail}")
    if not report.ok:
        raise typer.Exit(1)


def _print_check(c: Check) -> None:
    style = STATUS_STYLE[c.status]
    need = "required" if c.required else "optional"
    name = c.name + (f" {c.version}" if c.version else "")
    out.print(f"  [{style}]{c.status:<8}[/] {escape(name):<20} ({need}) {escape(c.purpose)}")
    if c.detail and c.status != "ok":
        out.print(f"           {escape(c.detail)}")
    if c.fix and c.status != "ok":
        out.print(f"           [bold]fix:[/] {escape(c.fix)}")
