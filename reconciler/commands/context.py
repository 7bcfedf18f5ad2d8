"""The repo a command points at, its state and clock; built by cli/, used by every command."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from reconciler.commands.served import trusted_serve
from reconciler.repo.source import MissionRepo
from state.errors import StateLocked
from state.store import State

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    """Naive UTC, the form DuckDB TIMESTAMP columns hold."""
    return datetime.now(UTC).replace(tzinfo=None)


@dataclass(frozen=True)
class MissionContext:
    """The repo the user pointed at, where its state lives, and the clock commands read."""

    repo: MissionRepo
    clock: Clock = utcnow

    @classmethod
    def at(cls, root: Path, state: Path | None = None) -> MissionContext:
        env_state = os.environ.get("MC_STATE")
        path = state or (Path(env_state) if env_state else None)
        repo = MissionRepo(root, path)
        repo.ensure_mc_ignored()
        return cls(repo)

    def read_state(self) -> State:
        try:
            return State.open(self.repo.state_path, write=False)
        except StateLocked as exc:
            raise self._served(exc, "read it through the dashboard's API at") from None

    def write_state(self) -> State:
        try:
            return State.open(self.repo.state_path, write=True)
        except StateLocked as exc:
            raise self._served(
                exc, "commit your change instead; serve applies it. Dashboard:"
            ) from None

    def served_by(self, holder: int | None = None) -> tuple[int, str] | None:
        """(pid, url) of the `mc serve` that holds this repo's state, if one does: serve.json
        is believed only for a live process listening on a loopback port (commands/served.py)
        and, when the lock holder's pid is known, only if it names that process."""
        served = trusted_serve(self.repo.mc_dir / "serve.json")
        if served is None or (holder is not None and holder != served.pid):
            return None
        return served.pid, served.url

    def _served(self, exc: StateLocked, advice: str) -> StateLocked:
        served = self.served_by(exc.pid)
        if served is None:
            return exc
        error = StateLocked(str(self.repo.state_path), served[0])
        error.args = (
            f"`mc serve` (pid {served[0]}) holds this repo's state; {advice} {served[1]}",
        )
        return error
