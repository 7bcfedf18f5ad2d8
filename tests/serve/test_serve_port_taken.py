"""`mc serve` on a port already in use: it stops at once with one line and exit 1, before it
opens the state or starts an agent (it used to reconcile and dispatch with no dashboard)."""

from __future__ import annotations

import json
import socket

from helpers.mc import run_mc
from helpers.serve import free_port
from helpers.starter import GitRepo, mc


def test_serve_on_a_taken_port_exits_1_before_any_agent_starts(mission_repo: GitRepo) -> None:
    port = free_port()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen()
        proc = run_mc("-C", str(mission_repo.root), "serve", "--port", str(port), timeout=60)

    assert proc.returncode == 1, proc
    assert proc.stderr.strip().splitlines() == [
        f"error: cannot listen on 127.0.0.1:{port}: address already in use"
        " (another mc serve? pick --port)"
    ]
    assert "Serving" not in proc.stdout
    runs = mc("runs", "--json", cwd=mission_repo.root)
    assert runs.returncode == 0, runs.stderr
    assert json.loads(runs.stdout) == []
    assert not [e for e in _events(mission_repo) if e["kind"].startswith("run.")]


def _events(repo: GitRepo) -> list[dict[str, str]]:
    proc = mc("events", "--json", "--limit", "1000", cwd=repo.root)
    assert proc.returncode == 0, proc.stderr
    events: list[dict[str, str]] = json.loads(proc.stdout)
    return events
