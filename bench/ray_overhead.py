"""Benchmark: 1,000 no-op runs on a local Ray cluster beside the local executor, in one run.

Both executors get the same LaunchRequests: a sandboxed (bubblewrap) `sh -c` that writes a
`done` result.json — so what differs is only how the run travels. The Ray cluster is the test
suite's: a head and a second raylet on 127.0.0.1 only (token auth, no dashboard, one CPU each);
tasks ask for 0.05 CPU so both nodes run several at once.

Reported, per executor: (a) latency, one run at a time (launch -> outcome recorded), p50/mean
over `--serial` runs: the difference is the overhead Ray adds per task (target <= 20 ms);
(b) throughput, `--tasks` runs with `--window` in flight at once: runs/s and wall time.

Run: .venv/bin/python bench/ray_overhead.py [--tasks 1000] [--serial 100] [--window 16]
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Protocol

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
sys.path.insert(0, str(HERE.parent / "tests" / "ray"))

from ray_harness import LocalCluster  # noqa: E402

from reconciler.runtime.local import LocalExecutor  # noqa: E402
from reconciler.runtime.ray_executor import RayExecutor  # noqa: E402
from reconciler.runtime.ray_worker import worker_base  # noqa: E402
from reconciler.runtime.sandbox import Sandbox  # noqa: E402
from reconciler.runtime.types import LaunchRequest, Outcome, RayPlacement  # noqa: E402

NOOP = ("/bin/sh", "-c", 'echo \'{"status": "done"}\' > "$MC_RESULT_JSON"')


class Runner(Protocol):
    def launch(self, req: LaunchRequest) -> object: ...
    def poll(self) -> list[Outcome]: ...
    def wait(self, timeout: float) -> None: ...


def requests(
    root: Path, prefix: str, count: int, placement: RayPlacement | None
) -> list[LaunchRequest]:
    return [
        LaunchRequest(
            run_id=f"{prefix}-{i}",
            task=f"{prefix}{i}",
            attempt=1,
            workspace=root / ".mc" / "work" / f"{prefix}{i}" / "1",
            command=NOOP,
            env={},
            protocol="files",
            task_json={"prompt": "nothing"},
            timeout_s=60,
            sandbox=Sandbox(),
            placement=placement,
        )
        for i in range(count)
    ]


def serial(ex: Runner, reqs: list[LaunchRequest]) -> list[float]:
    """Latency of each run alone, in seconds."""
    out = []
    for req in reqs:
        began = time.perf_counter()
        ex.launch(req)
        got: list[Outcome] = []
        while not got:
            ex.wait(1.0)
            got = ex.poll()
        assert got[0].status == "done", got[0].error
        out.append(time.perf_counter() - began)
    return out


def windowed(ex: Runner, reqs: list[LaunchRequest], window: int) -> float:
    """Wall seconds to run all with at most `window` in flight."""
    began = time.perf_counter()
    pending = list(reversed(reqs))
    live = 0
    done = 0
    while done < len(reqs):
        while pending and live < window:
            ex.launch(pending.pop())
            live += 1
        ex.wait(1.0)
        for outcome in ex.poll():
            assert outcome.status == "done", outcome.error
            live -= 1
            done += 1
    return time.perf_counter() - began


def row(name: str, lat: list[float], wall: float, tasks: int) -> str:
    ms = sorted(x * 1000 for x in lat)
    return (
        f"| {name} | {statistics.median(ms):.1f} | {statistics.fmean(ms):.1f} | "
        f"{ms[int(len(ms) * 0.95) - 1]:.1f} | {tasks / wall:.1f} | {wall:.1f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--serial", type=int, default=100)
    parser.add_argument("--window", type=int, default=16)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="mc-ray-bench-"))
    cluster = LocalCluster(
        Path(tempfile.mkdtemp(prefix="mcray", dir="/tmp")), secrets.token_hex(32)
    )
    os.environ.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=cluster.token)
    namespace = f"mc-bench-{secrets.token_hex(3)}"
    try:
        t0 = time.perf_counter()
        cluster.start()
        print(f"cluster up in {time.perf_counter() - t0:.1f}s at {cluster.address}", flush=True)
        place = RayPlacement(cluster.address, namespace, {"CPU": 0.05})
        results: dict[str, tuple[list[float], float]] = {}
        local = LocalExecutor()
        ray_ex = RayExecutor(cluster.address, namespace)
        for name, ex, placement in (("local", local, None), ("ray", ray_ex, place)):
            warm = requests(root, f"{name}-warm", 20, placement)
            windowed(ex, warm, args.window)  # warm up (Ray starts its worker processes)
            lat = serial(ex, requests(root, f"{name}-s", args.serial, placement))
            wall = windowed(ex, requests(root, f"{name}-w", args.tasks, placement), args.window)
            results[name] = (lat, wall)
            print(f"{name}: done", flush=True)
        local.shutdown()
        ray_ex.shutdown()
        outside = [
            a
            for a, _ in cluster.listeners()
            if not a.rsplit(":", 1)[0].strip("[]").endswith("127.0.0.1")
        ]
        print()
        print(
            f"{args.tasks} no-op sandboxed runs, {args.window} in flight; "
            f"latency over {args.serial} runs one at a time"
        )
        print("| executor | p50 latency ms | mean ms | p95 ms | throughput runs/s | wall s |")
        print("|---|---|---|---|---|---|")
        for name, (lat, wall) in results.items():
            print(row(name, lat, wall, args.tasks))
        added = statistics.median(results["ray"][0]) - statistics.median(results["local"][0])
        per_task = (results["ray"][1] - results["local"][1]) / args.tasks
        print()
        print(
            f"Ray adds {added * 1000:.1f} ms per run (p50 latency, one at a time); "
            f"{per_task * 1000:.1f} ms per run of wall time at window {args.window}"
        )
        print(f"listeners beyond loopback during the run: {outside or 'none'}")
    finally:
        import ray

        ray.shutdown()
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(worker_base() / namespace, ignore_errors=True)


if __name__ == "__main__":
    main()
