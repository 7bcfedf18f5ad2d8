"""`mc trust`: the chain of trust of the approver set through mission.yaml's git history."""

from __future__ import annotations

import json
import sys

from rich.markup import escape
from rich.table import Table

from cli.main import JsonOpt, RevOpt, app, mission_context, out
from reconciler.commands import trust as trust_ops
from reconciler.governance.trust_chain import Link, chain_to_json, fix, refusal


@app.command()
def trust(rev: RevOpt = "HEAD", as_json: JsonOpt = False) -> None:
    """The approver set's chain of trust in mission.yaml's git history: each commit that
    changed it, who it set, and whether the set before it approved (used when no mission is
    applied, e.g. a lost state)."""
    chain = trust_ops.trust_chain(mission_context(), rev)
    if as_json:
        sys.stdout.write(json.dumps(chain_to_json(chain), indent=2) + "\n")
        return
    table = Table("commit", "date (UTC)", "approvers set", "verdict", "why", title="Trust chain")
    for link in chain.links:
        table.add_row(
            (link.commit or "work tree")[:12],
            link.time.strftime("%Y-%m-%d %H:%M"),
            ", ".join(link.approvers) or "(none)",
            LINK_TEXT[link.verdict],
            escape(_link_why(link)),
        )
    out.print(table)
    head = ", ".join(chain.head) or "no approvers"
    if chain.head_follows:
        out.print(f"[green]HEAD follows the chain:[/] its approvers ({head}) are trusted.")
        return
    out.print(f"[bold red]HEAD breaks the chain:[/] {escape(refusal(chain))}")
    out.print(f"[bold]Fix:[/] {escape(fix(chain))}")


LINK_TEXT = {
    "first_use": "trusted on first use",
    "followed": "followed",
    "broke": "[bold red]BROKE the chain[/]",
    "restored": "restored the set in force",
}


def _link_why(link: Link) -> str:
    if link.verdict == "first_use":
        return "the first approver set in history"
    if link.verdict == "restored":
        return f"declares again the set in force ({', '.join(link.approvers)})"
    return link.reason
