"""Benchmark: how fast a run past its spend limit is stopped, and what watching cost.json costs.

(a) Stop latency, through the real LocalExecutor with sandboxed agents (bubblewrap; cost.json is
in the bind-mounted workspace): an agent writes cost.json past its $0.25 cap and stamps the
time just before; its SIGTERM handler stamps the time it was told. Either it exits when told,
or it traps SIGTERM and is SIGKILLed. Reported: told (SIGTERM - crossing) and ended (reaped -
crossing), p50/p95/max in ms. Targets: told <= 100 ms, ended <= 600 ms for a trapping agent.
(b) CPU of the cost watch: this process's CPU time (all its threads) over a window while K runs
sleep with a cap (watched) versus without (not watched); the difference per watched run, as a
share of one core. Run: .venv/bin/python bench/cost_watch.py [--trials 20] [--window 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from helpers.agents import interpreter_mounts

from reconciler.runtime.local import LocalExecutor
from reconciler.runtime.sandbox import Mount, Sandbox
from reconciler.runtime.types import LaunchRequest, Outcome

CROSSER = """
import json, os, signal, sys, time
from pathlib import Path
WS = Path(os.environ["MC_COST_JSON"]).parent
TRAP = {trap}

def stamp(name):
    (WS / name).write_text(repr(time.time()))

def on_term(signum, frame):
    stamp("told")
    if not TRAP:
        sys.exit(0)

def spend(usd):
    tmp = WS / "cost.tmp"
    tmp.write_text(json.dumps({{"cost_usd": usd}}))
    tmp.replace(os.environ["MC_COST_JSON"])

signal.signal(signal.SIGTERM, on_term)
spend(0.1)
time.sleep(0.3)
stamp("crossed")
spend(1.0)
while True:
    time.sleep(0.01)
"""

SLEEPER = "import time\ntime.sleep(600)\n"


def request(root: Path, run_id: str, code: str, cap: Decimal | None, box: bool) -> LaunchRequest:
    script = root / "agents" / f"{run_id}.py"
    script.parent.mkdir(parents=True, exist_ok=True)
    script.write_text(code)
    shown = tuple(Mount(Path(m["path"])) for m in interpreter_mounts())
    return LaunchRequest(
        run_id=run_id,
        task="bench",
        attempt=1,
        workspace=root / ".mc" / "work" / "bench" / run_id,
        command=(sys.executable, str(script)),
        env={},
        protocol="files",
        task_json={"prompt": "spend", "run_id": run_id},
        timeout_s=60.0,
        per_run_cap_usd=cap,
        sandbox=Sandbox(mounts=(*shown, Mount(script.parent))) if box else None,
    )


def drive(ex: LocalExecutor, n: int, within: float = 60.0) -> list[Outcome]:
    """Wait and poll as the engine does, until n outcomes are in."""
    outcomes: list[Outcome] = []
    give_up = time.monotonic() + within
    while len(outcomes) < n and time.monotonic() < give_up:
        ex.wait(0.25)
        outcomes += ex.poll()
    return outcomes


def stop_latency(root: Path, trials: int, trap: bool) -> tuple[list[float], list[float]]:
    """(told, ended) in ms after crossing, one per trial; one run at a time."""
    told, ended = [], []
    code = CROSSER.format(trap=trap)
    with LocalExecutor(grace_s=2.0) as ex:
        for i in range(trials):
            req = request(root, f"{'trap' if trap else 'exit'}-{i}", code, Decimal("0.25"), True)
            ex.launch(req)
            [outcome] = drive(ex, 1)
            assert outcome.status == "failed", outcome.error
            crossed = float((req.workspace / "crossed").read_text())
            told.append((float((req.workspace / "told").read_text()) - crossed) * 1000)
            ended.append((outcome.ended_at - crossed) * 1000)
    return told, ended


def watch_cpu(root: Path, runs: int, capped: bool, window: float) -> float:
    """CPU seconds this process used over `window` while `runs` sleepers are in flight."""
    cap = Decimal("1") if capped else None
    with LocalExecutor(grace_s=0.5) as ex:
        for i in range(runs):
            ex.launch(request(root, f"cpu-{capped}-{runs}-{i}", SLEEPER, cap, False))
        time.sleep(0.5)  # let the spawns settle
        start, cpu0 = time.monotonic(), time.process_time()
        while time.monotonic() - start < window:
            ex.wait(1.0)  # as an idle serve loop does
            ex.poll()
        used = time.process_time() - cpu0
        ex.shutdown(0.5)
    return used


def stat_cost_us(root: Path) -> float:
    path = root / "cost.json"
    path.write_text('{"cost_usd": 0.1}')
    n = 20000
    start = time.perf_counter()
    for _ in range(n):
        path.lstat()
    return (time.perf_counter() - start) / n * 1e6


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--window", type=float, default=5.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mc-bench-cost-") as tmp:
        root = Path(tmp)
        print(f"cost_watch  ({os.cpu_count()} cores, {args.trials} trials each, sandboxed)")
        print("| agent | told p50 | told p95 | told max | ended p50 | ended p95 | ended max |")
        print("|---|---|---|---|---|---|---|")
        for trap in (False, True):
            told, ended = stop_latency(root, args.trials, trap)
            name = "traps SIGTERM" if trap else "exits on SIGTERM"
            cells = [statistics.median(told), pct(told, 0.95), max(told)]
            cells += [statistics.median(ended), pct(ended, 0.95), max(ended)]
            print(f"| {name} | " + " | ".join(f"{c:.0f} ms" for c in cells) + " |")
        print(f"\nlstat of cost.json: {stat_cost_us(root):.1f} µs")
        print(f"\nCPU of this process over {args.window:g} s (K runs sleeping):")
        print("| K | with a cap (watched) | without | per watched run (% of a core) |")
        print("|---|---|---|---|")
        for k in (1, 8, 32):
            watched = watch_cpu(root, k, True, args.window)
            plain = watch_cpu(root, k, False, args.window)
            per_run = (watched - plain) / k / args.window * 100
            print(f"| {k} | {watched * 1000:.0f} ms | {plain * 1000:.0f} ms | {per_run:.3f}% |")


if __name__ == "__main__":
    main()
