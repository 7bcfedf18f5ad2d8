"""A real local Ray cluster for the Ray executor's tests: a head and a second raylet (with a
custom `browser` resource), both on 127.0.0.1 with token authentication, started once per test
module and always stopped — by killing the sessions it started, never anything else.

Small on purpose (the machine has 2 cores and other tests run beside these): one CPU per node,
80 MB object stores, no dashboard.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from helpers.agents import PRELUDE

from reconciler.runtime.ray_executor import RayExecutor
from reconciler.runtime.ray_worker import worker_base
from reconciler.runtime.sandbox import Mount, Sandbox
from reconciler.runtime.types import LaunchRequest, Outcome, RayPlacement

HERE = Path(__file__).parent
STORE_BYTES = 80 * 1024 * 1024
START_TIMEOUT_S = 120.0
# One token per test process: Ray's driver loads its token once and keeps it, so every
# cluster this process joins (one per test module) is started with the same one.
TOKEN = secrets.token_hex(32)


def _free_ports(count: int) -> list[int]:
    """`count` distinct ports free on 127.0.0.1 right now (bound and released)."""
    socks: list[socket.socket] = []
    ports: list[int] = []
    try:
        while len(ports) < count:
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
            ports.append(s.getsockname()[1])
    finally:
        for s in socks:
            s.close()
    return ports


def _worker_port_range(width: int = 40) -> tuple[int, int]:
    """A run of `width` ports free right now, for one node's worker processes."""
    for _ in range(200):
        low = 20000 + secrets.randbelow(30000)
        if all(_port_free(p) for p in range(low, low + width)):
            return low, low + width - 1
    raise RuntimeError("no free run of ports for Ray workers")


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _session_of(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[3])  # field 6: session id


@dataclass
class LocalCluster:
    """The cluster: its address, token, temp dir and the sessions its processes run in."""

    temp_dir: Path
    token: str
    address: str = ""
    sessions: list[int] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)

    def start(self) -> None:
        self.env = {
            **os.environ,
            "RAY_AUTH_MODE": "token",
            "RAY_AUTH_TOKEN": self.token,
            "RAY_USAGE_STATS_ENABLED": "0",
            "PYTHONPATH": str(HERE.parents[1]),
        }
        head = _free_ports(9)
        self.address = f"127.0.0.1:{head[0]}"
        low, high = _worker_port_range()
        self._ray_start(
            "--head",
            "--node-ip-address=127.0.0.1",
            f"--port={head[0]}",
            f"--ray-client-server-port={head[1]}",
            "--include-dashboard=false",
            "--disable-usage-stats",
            *self._node_ports(head[2:], low, high),
        )
        node = _free_ports(7)
        low, high = _worker_port_range()
        self._ray_start(
            f"--address={self.address}",
            "--node-ip-address=127.0.0.1",
            '--resources={"browser": 1}',
            *self._node_ports(node, low, high),
        )

    def _node_ports(self, ports: Sequence[int], low: int, high: int) -> list[str]:
        return [
            f"--node-manager-port={ports[0]}",
            f"--object-manager-port={ports[1]}",
            f"--dashboard-agent-listen-port={ports[2]}",
            f"--dashboard-agent-grpc-port={ports[3]}",
            f"--runtime-env-agent-port={ports[4]}",
            f"--metrics-export-port={ports[5]}",
            f"--min-worker-port={low}",
            f"--max-worker-port={high}",
            "--num-cpus=1",
            f"--object-store-memory={STORE_BYTES}",
            f"--temp-dir={self.temp_dir}",
        ]

    def _ray_start(self, *args: str) -> None:
        proc = subprocess.Popen(
            [sys.executable, str(HERE / "ray_cli.py"), "start", *args],
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # every process it leaves behind keeps this session
        )
        self.sessions.append(proc.pid)
        out, _ = proc.communicate(timeout=START_TIMEOUT_S)
        if proc.returncode != 0:
            raise RuntimeError(f"ray start failed:\n{out.decode(errors='replace')[-3000:]}")

    def pids(self) -> list[int]:
        """Live processes of the cluster (by the sessions `ray start` ran in)."""
        mine = set(self.sessions)
        return [int(p) for p in os.listdir("/proc") if p.isdigit() and _session_of(int(p)) in mine]

    def listeners(self) -> list[tuple[str, int]]:
        """(local address, pid) of every TCP listening socket a cluster process holds."""
        out = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True, check=True).stdout
        pids = set(self.pids())
        found = []
        for line in out.splitlines():
            cols = line.split()
            for pid in re.findall(r"pid=(\d+)", line):
                if int(pid) in pids:
                    found.append((cols[3], int(pid)))
        return found

    def stop(self) -> None:
        """SIGKILL every process of the cluster's sessions (and nothing else)."""
        for _ in range(50):
            pids = self.pids()
            if not pids:
                break
            for pid in pids:
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.1)
        shutil.rmtree(self.temp_dir, ignore_errors=True)


@dataclass
class RayAgents:
    """Builds launch requests for Python agents run sandboxed on the test cluster."""

    root: Path  # the control plane's side: .mc/work, .mc/drops live under root/.mc
    address: str
    namespace: str
    counter: int = 0

    def request(
        self,
        code: str,
        *,
        resources: Mapping[str, float] | None = None,
        timeout_s: float = 60.0,
        mounts: Sequence[Mount] = (),
        **kwargs: Any,
    ) -> LaunchRequest:
        self.counter += 1
        run_id = kwargs.pop("run_id", f"run-{self.counter}-{secrets.token_hex(3)}")
        task = kwargs.pop("task", f"task{self.counter}")
        attempt = kwargs.pop("attempt", 1)
        sandbox = kwargs.pop("sandbox", Sandbox(mounts=(*interpreter(), *mounts)))
        return LaunchRequest(
            run_id=run_id,
            task=task,
            attempt=attempt,
            workspace=self.root / ".mc" / "work" / task / str(attempt),
            command=(sys.executable, "-c", PRELUDE + textwrap.dedent(code)),
            env=kwargs.pop("env", {}),
            protocol="files",
            task_json=kwargs.pop("task_json", {"prompt": "do it", "run_id": run_id}),
            timeout_s=timeout_s,
            sandbox=sandbox,
            placement=RayPlacement(self.address, self.namespace, resources or {"CPU": 0.1}),
            **kwargs,
        )


def interpreter() -> tuple[Mount, ...]:
    """Read-only mounts that let a sandboxed agent run this Python (venv + installation)."""
    found = {sys.prefix, sys.base_prefix, os.path.dirname(os.path.realpath(sys.executable))}
    paths = [Path(p) for p in found]
    return tuple(
        Mount(p) for p in sorted(paths) if not any(p != q and p.is_relative_to(q) for q in paths)
    )


def drive(ex: RayExecutor, run_ids: set[str], within: float = 90.0) -> dict[str, Outcome]:
    """Wait and poll like the engine does until every run in run_ids has an outcome."""
    outcomes: dict[str, Outcome] = {}
    give_up = time.monotonic() + within
    while not run_ids <= outcomes.keys():
        assert time.monotonic() < give_up, f"runs did not finish: {run_ids - outcomes.keys()}"
        ex.wait(1.0)
        for outcome in ex.poll():
            assert outcome.run_id not in outcomes, f"{outcome.run_id} reported twice"
            outcomes[outcome.run_id] = outcome
    return outcomes


def wait_for(path: Path, within: float = 60.0) -> None:
    give_up = time.monotonic() + within
    while not path.exists():
        assert time.monotonic() < give_up, f"{path} never appeared"
        time.sleep(0.05)


# --- fixtures (exposed by conftest.py) ---------------------------------------------------------


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[LocalCluster]:
    """A fresh two-node loopback cluster for the test module; the driver joins it."""
    saved = {k: os.environ.get(k) for k in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN")}
    cluster = LocalCluster(Path(tempfile.mkdtemp(prefix="mcray", dir="/tmp")), TOKEN)
    os.environ.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=cluster.token)
    try:
        cluster.start()
        yield cluster
    finally:
        import ray

        with contextlib.suppress(Exception):
            ray.shutdown()
        cluster.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture(scope="module")
def namespace() -> Iterator[str]:
    """A namespace of its own (one ledger); its worker directory is removed afterwards."""
    name = f"mc-test-{secrets.token_hex(4)}"
    yield name
    shutil.rmtree(worker_base() / name, ignore_errors=True)


@pytest.fixture(scope="module")
def ray_executor(ray_cluster: LocalCluster, namespace: str) -> Iterator[RayExecutor]:
    ex = RayExecutor(ray_cluster.address, namespace, grace_s=0.5)
    yield ex
    ex.shutdown(grace_s=0.5)


@pytest.fixture
def ray_agents(tmp_path: Path, ray_cluster: LocalCluster, namespace: str) -> RayAgents:
    return RayAgents(tmp_path, ray_cluster.address, namespace)
