"""Benchmark: the dashboard with 10k tasks while the reconciler churns.

Starts `mc serve` on a committed repo of 10,000 no-op tasks (agent `true`, concurrency 2, so
the reconciler dispatches and records work throughout), then sends 100 requests/s for 30 s
from a loopback load generator, alternating the tasks page and the JSON API. Reports p50,
p99 and errors. Target: p99 <= 50 ms, no errors. Run: .venv/bin/python bench/dashboard_load.py
"""

from __future__ import annotations

import argparse
import http.client
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ENV = {
    **os.environ,
    "GIT_AUTHOR_NAME": "bench",
    "GIT_AUTHOR_EMAIL": "bench@localhost",
    "GIT_COMMITTER_NAME": "bench",
    "GIT_COMMITTER_EMAIL": "bench@localhost",
}
MC = str(Path(sys.executable).parent / "mc")
PATHS = ("/tasks", "/api/tasks?limit=50", "/tasks?state=DONE&page=3", "/api/overview")


def make_repo(root: Path, tasks: int) -> None:
    (root / "agents").mkdir(parents=True)
    (root / "tasks").mkdir()
    (root / "mission.yaml").write_text(
        "apiVersion: mc/v1\nkind: Mission\nmetadata: {name: load}\nspec: {}\n"
    )
    (root / "agents/noop.yaml").write_text(
        "apiVersion: mc/v1\nkind: Agent\nmetadata: {name: noop}\n"
        "spec: {command: ['true'], protocol: stdout, concurrency: 2}\n"
    )
    docs = [
        f"apiVersion: mc/v1\nkind: Task\nmetadata: {{name: t{i:05d}, labels: {{team: t{i % 7}}}}}\n"
        f"spec: {{title: no-op {i}, agent: noop, priority: {i % 3}}}\n"
        for i in range(tasks)
    ]
    (root / "tasks/all.yaml").write_text("---\n".join(docs))
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "load"]):
        subprocess.run(["git", *args], cwd=root, env=ENV, check=True)


def load(port: int, rate: float, seconds: float) -> tuple[list[float], int]:
    """Open-loop: request i is due at start + i/rate, whatever the previous ones did."""
    total = int(rate * seconds)
    start = time.monotonic() + 0.2
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    counter = iter(range(total))

    def worker() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        for i in counter:
            due = start + i / rate
            time.sleep(max(0.0, due - time.monotonic()))
            began = time.monotonic()
            try:
                conn.request("GET", PATHS[i % len(PATHS)])
                resp = conn.getresponse()
                resp.read()
                ok = resp.status == 200
            except (OSError, http.client.HTTPException):
                ok = False
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            with lock:
                if ok:
                    latencies.append(time.monotonic() - began)
                else:
                    errors[0] += 1
        conn.close()

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=seconds + 30)
    return latencies, errors[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--port", type=int, default=4188)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mc-load-") as tmp:
        repo = Path(tmp) / "repo"
        make_repo(repo, args.tasks)
        serve = subprocess.Popen(
            [MC, "--repo", str(repo), "serve", "--host", "127.0.0.1", "--port", str(args.port)],
            env=ENV,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            deadline = time.monotonic() + 120
            while True:  # ready when the dashboard answers
                try:
                    conn = http.client.HTTPConnection("127.0.0.1", args.port, timeout=2)
                    conn.request("GET", "/healthz")
                    if conn.getresponse().status == 200:
                        break
                except OSError:
                    pass
                if time.monotonic() > deadline or serve.poll() is not None:
                    raise SystemExit("mc serve did not come up")
                time.sleep(0.2)
            latencies, errors = load(args.port, args.rate, args.seconds)
        finally:
            serve.terminate()
            serve.wait(timeout=60)
    ms = sorted(x * 1000 for x in latencies)
    p99 = ms[min(len(ms) - 1, round(0.99 * (len(ms) - 1)))] if ms else float("nan")
    print("| requests | rate | p50 | p99 | max | errors |")
    print("|---:|---:|---:|---:|---:|---:|")
    print(
        f"| {len(ms) + errors} | {args.rate:.0f}/s | {statistics.median(ms):.1f} ms"
        f" | {p99:.1f} ms | {ms[-1]:.1f} ms | {errors} |"
    )


if __name__ == "__main__":
    main()
