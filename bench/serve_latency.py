"""Benchmark: commit-to-dispatch latency and idle CPU of `mc serve`.

(a) 50 commits, each adding one task; latency = from `git commit` returning to the agent
process starting (the agent stamps the time itself). Reports p50/p99. Targets: p50 <= 100 ms,
p99 <= 500 ms. (c) CPU of an idle serve over 30 s (target <= 1% of a core), read from
/proc/<pid>/stat. Everything binds 127.0.0.1. Run: .venv/bin/python bench/serve_latency.py
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
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
STAMP = 'date +%s.%N > "$MC_REPO/marks/$MC_TASK"'


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, env=ENV, check=True, capture_output=True)


def make_repo(root: Path) -> None:
    (root / "agents").mkdir(parents=True)
    (root / "tasks").mkdir()
    (root / "marks").mkdir()
    (root / ".gitignore").write_text("marks/\n")
    (root / "mission.yaml").write_text(
        "apiVersion: mc/v1\nkind: Mission\nmetadata: {name: latency}\nspec: {}\n"
    )
    (root / "agents/stamp.yaml").write_text(
        "apiVersion: mc/v1\nkind: Agent\nmetadata: {name: stamp}\n"
        f"spec: {{command: [sh, -c, '{STAMP}'], protocol: stdout, concurrency: 4}}\n"
    )
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "mission")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--commits", type=int, default=50)
    parser.add_argument("--idle", type=float, default=30.0)
    parser.add_argument("--port", type=int, default=4187)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mc-latency-") as tmp:
        repo = Path(tmp) / "repo"
        make_repo(repo)
        serve = subprocess.Popen(
            [MC, "--repo", str(repo), "serve", "--host", "127.0.0.1", "--port", str(args.port)],
            env=ENV,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            deadline = time.monotonic() + 30
            while not (repo / ".mc" / "serve.json").exists():
                if time.monotonic() > deadline or serve.poll() is not None:
                    raise SystemExit("mc serve did not start")
                time.sleep(0.05)
            time.sleep(1.0)
            latencies = []
            for i in range(args.commits):
                name = f"t{i:03d}"
                (repo / "tasks" / f"{name}.yaml").write_text(
                    "apiVersion: mc/v1\nkind: Task\n"
                    f"metadata: {{name: {name}}}\nspec: {{title: stamp {i}, agent: stamp}}\n"
                )
                git(repo, "add", "-A")
                git(repo, "commit", "-qm", f"task {i}")
                committed = time.time()
                mark = repo / "marks" / name
                limit = time.monotonic() + 10
                while not mark.exists() or not mark.read_text().strip():
                    if time.monotonic() > limit:
                        raise SystemExit(f"task {name} was not dispatched within 10 s")
                    time.sleep(0.002)
                latencies.append(float(mark.read_text()) - committed)
            time.sleep(2.0)  # let the last runs settle before measuring idle
            before, started = cpu_seconds(serve.pid), time.monotonic()
            time.sleep(args.idle)
            idle_pct = (cpu_seconds(serve.pid) - before) / (time.monotonic() - started) * 100
        finally:
            serve.terminate()
            serve.wait(timeout=30)
    ms = sorted(x * 1000 for x in latencies)
    p50 = statistics.median(ms)
    p99 = ms[min(len(ms) - 1, round(0.99 * (len(ms) - 1)))]
    print("| metric | value | target |")
    print("|---|---:|---:|")
    print(f"| commit → dispatch p50 ({len(ms)} commits) | {p50:.0f} ms | ≤ 100 ms |")
    print(f"| commit → dispatch p99 | {p99:.0f} ms | ≤ 500 ms |")
    print(f"| commit → dispatch min / max | {ms[0]:.0f} / {ms[-1]:.0f} ms | |")
    print(f"| idle `mc serve` CPU ({args.idle:.0f} s) | {idle_pct:.2f} % of a core | ≤ 1 % |")


if __name__ == "__main__":
    main()
