"""A real `mc serve` for tests: started on 127.0.0.1 with a free port, its JSON API
polled with bounded waits, stopped with SIGTERM (the way a user stops it)."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from helpers.mc import start_mc
from helpers.waiting import wait_until

START_S = 30.0  # imports, the first reconcile and uvicorn's start-up, on a busy shared machine
STOP_S = 30.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Served:
    """A running `mc serve` and how to ask it things."""

    proc: subprocess.Popen[str]
    url: str

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(self.url + path, timeout=5) as resp:
            body = resp.read().decode()
        return json.loads(body) if path.startswith("/api/") else body

    def healthy(self) -> bool:
        try:
            return bool(self.proc.poll() is None and self.get("/healthz") == "ok")
        except (OSError, urllib.error.URLError):
            return False

    def facts(self) -> dict[str, Any]:
        """The loop's own status (last commit reconciled, last error, …)."""
        status: dict[str, Any] = self.get("/api/status")["serve"]
        return status

    def wait_reconciled(self, commit: str, timeout: float = 30.0) -> dict[str, Any]:
        """Until the loop has reconciled `commit` (it is alive all the while)."""

        def reconciled() -> dict[str, Any] | None:
            assert self.proc.poll() is None, f"mc serve exited: {self.output()}"
            facts = self.facts()
            return facts if facts.get("last_commit") == commit else None

        found: dict[str, Any] = wait_until(
            reconciled, timeout, f"serve to reconcile {commit[:12]}", context=lambda: "see above"
        )
        return found

    def output(self) -> str:
        if self.proc.poll() is None:
            return "(still running)"
        out, err = self.proc.communicate(timeout=STOP_S)
        return f"exit {self.proc.returncode}\n{out}\n{err}"


@contextmanager
def served(root: Path, *options: str) -> Iterator[Served]:
    """`mc serve [options]` on `root`; on exit it must stop cleanly (exit 0) within STOP_S."""
    port = free_port()
    proc = start_mc("-C", str(root), "serve", "--host", "127.0.0.1", "--port", str(port), *options)
    serve = Served(proc, f"http://127.0.0.1:{port}")
    try:
        wait_until(lambda: serve.healthy() or proc.poll() is not None, START_S, "mc serve to start")
        assert proc.poll() is None, serve.output()
        yield serve
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            out, err = proc.communicate(timeout=STOP_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate(timeout=STOP_S)
    assert proc.returncode == 0, f"mc serve exited {proc.returncode}\n{out}\n{err}"
