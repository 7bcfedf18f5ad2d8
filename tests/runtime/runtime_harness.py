"""Test harness for the runtime: agents are small Python scripts run with sys.executable."""

from __future__ import annotations

import sys
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from reconciler.runtime.local import LocalExecutor
from reconciler.runtime.procs import read_proc_stat
from reconciler.runtime.types import AgentProtocol, LaunchRequest, Outcome

GRACE_S = 0.5


@dataclass
class Agents:
    """Writes agent scripts and builds launch requests for them under one tmp_path."""

    root: Path
    counter: int = 0

    def script(self, code: str, name: str | None = None) -> Path:
        self.counter += 1
        path = self.root / "agents" / (name or f"agent{self.counter}.py")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(code))
        return path

    def request(
        self,
        code: str,
        *,
        run_id: str | None = None,
        protocol: AgentProtocol = "files",
        timeout_s: float = 20.0,
        **kwargs: Any,
    ) -> LaunchRequest:
        script = self.script(code)
        run_id = run_id or f"run-{script.stem}"
        return LaunchRequest(
            run_id=run_id,
            task=kwargs.pop("task", "demo"),
            attempt=kwargs.pop("attempt", 1),
            workspace=kwargs.pop("workspace", self.root / ".mc" / "work" / "demo" / run_id),
            command=(sys.executable, str(script)),
            env=kwargs.pop("env", {}),
            protocol=protocol,
            task_json=kwargs.pop("task_json", {"prompt": "do it", "run_id": run_id}),
            timeout_s=timeout_s,
            **kwargs,
        )


def run_all(
    ex: LocalExecutor, reqs: list[LaunchRequest], within: float = 20.0
) -> dict[str, Outcome]:
    """Launch every request and drive the executor like the applier does, until all end."""
    for req in reqs:
        ex.launch(req)
    return drive(ex, {r.run_id for r in reqs}, within)


def drive(ex: LocalExecutor, run_ids: set[str], within: float = 20.0) -> dict[str, Outcome]:
    outcomes: dict[str, Outcome] = {}
    give_up = time.monotonic() + within
    while not run_ids <= outcomes.keys():
        assert time.monotonic() < give_up, f"runs did not finish: {run_ids - outcomes.keys()}"
        ex.wait(1.0)
        outcomes.update((o.run_id, o) for o in ex.poll())
    return outcomes


def run_one(ex: LocalExecutor, req: LaunchRequest, within: float = 20.0) -> Outcome:
    return run_all(ex, [req], within)[req.run_id]


def gone_soon(pid: int, within: float = 2.0) -> bool:
    """True once pid is gone or a zombie: a SIGKILLed process takes a moment to die."""
    give_up = time.monotonic() + within
    while (stat := read_proc_stat(pid)) is not None and stat.state not in ("Z", "X"):
        if time.monotonic() >= give_up:
            return False
        time.sleep(0.01)
    return True


# --- fixtures (exposed by conftest.py) ---------------------------------------------------------


@pytest.fixture
def executor() -> Iterator[LocalExecutor]:
    ex = LocalExecutor(grace_s=GRACE_S)
    yield ex
    ex.shutdown(grace_s=GRACE_S)


@pytest.fixture
def agents(tmp_path: Path) -> Agents:
    return Agents(tmp_path)
