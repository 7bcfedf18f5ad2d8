"""How every read command gets its answer: the state file when free, else the process holding
it (`mc apply`, `mc serve`, `mc bot`); a note on stderr says when it came from that process."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cli.main import err, mission_context
from reconciler.commands import reads


def read(view: str, params: Mapping[str, str | None] | None = None) -> Any:
    """The JSON body of one view (reconciler/commands/read_views.py); None params are left out."""
    kept = {k: v for k, v in (params or {}).items() if v is not None}
    found = reads.read(mission_context(), view, kept)
    note(found.source)
    return found.body


def note(source: str | None) -> None:
    """Say on stderr where an answer came from, when not from the state file itself."""
    if source:
        err.print(f"[dim]{source}[/]", highlight=False)
