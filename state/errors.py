"""Typed errors of the state store, phrased for the person running `mc`."""

from __future__ import annotations

from specs.errors import MCError


class StateError(MCError):
    """The state file cannot be used as asked."""


class StateLocked(StateError):
    def __init__(self, path: str, pid: int | None) -> None:
        self.pid = pid
        who = f"pid {pid}" if pid else "another process"
        super().__init__(
            f"{path}: state is locked by {who} (is `mc serve` or another `mc apply` running?)"
        )


class StateCorrupt(StateError):
    def __init__(self, path: str, detail: str) -> None:
        super().__init__(f"{path}: not a readable Mission Control state file ({detail})")


class StateTooNew(StateError):
    def __init__(self, path: str, found: int, known: int) -> None:
        super().__init__(
            f"{path}: state schema version {found} is newer than this mc understands ({known});"
            " upgrade mc"
        )


class StaleWrite(StateError):
    """An optimistic write lost a race: the serial moved since the caller read it."""
