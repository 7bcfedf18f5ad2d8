"""Benchmark: 1,000 no-op tasks through `mc apply` vs the same processes in a bare pool.

For agent concurrency 2 and 8: tasks/s and per-task overhead through the reconciler (apply +
drive to convergence, the code `mc apply --auto-approve` runs), DuckDB statements per task,
and the floor: 1,000 `true` processes through a bare subprocess pool of the same width.
Each width runs twice in the same process: agents sandboxed (the default, bubblewrap) and
unconfined (`sandbox: none`); the difference is the sandbox's added cost per attempt.
Target: >= 0.5x the floor's rate; <= 3 statements per task; sandbox <= 10 ms per attempt.
Run: .venv/bin/python bench/throughput.py
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from reconciler.commands import plan_apply as ops
from reconciler.commands.context import MissionContext

ENV = {
    "GIT_AUTHOR_NAME": "bench",
    "GIT_AUTHOR_EMAIL": "bench@localhost",
    "GIT_COMMITTER_NAME": "bench",
    "GIT_COMMITTER_EMAIL": "bench@localhost",
}


def make_repo(root: Path, tasks: int, width: int, sandbox: str) -> None:
    (root / "agents").mkdir(parents=True)
    (root / "tasks").mkdir()
    (root / "mission.yaml").write_text(
        "apiVersion: mc/v1\nkind: Mission\nmetadata: {name: throughput}\n"
        f"spec: {{sandbox: {sandbox}}}\n"
    )
    (root / "agents/noop.yaml").write_text(
        "apiVersion: mc/v1\nkind: Agent\nmetadata: {name: noop}\n"
        f"spec: {{command: ['true'], protocol: stdout, concurrency: {width}, timeout: 30s}}\n"
    )
    docs = [
        f"apiVersion: mc/v1\nkind: Task\nmetadata: {{name: t{i:05d}}}\n"
        f"spec: {{title: no-op {i}, agent: noop}}\n"
        for i in range(tasks)
    ]
    (root / "tasks/all.yaml").write_text("---\n".join(docs))
    env = {**os.environ, **ENV}
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "bench"]):
        subprocess.run(["git", *args], cwd=root, env=env, check=True)


def through_mc(root: Path) -> tuple[float, int, int]:
    """Seconds, statements and ticks for apply + drive to convergence."""
    ctx = MissionContext.at(root)
    start = time.perf_counter()
    done = ops.apply_now(ctx, "bench", lambda plan: True, ops.Drive())
    elapsed = time.perf_counter() - start
    assert done.converged is not None
    tasks = done.converged.summary["tasks"]
    if tasks.get("DONE") != sum(tasks.values()):
        raise SystemExit(f"not every task is DONE: {tasks}")
    return elapsed, done.converged.statements, done.converged.ticks


def floor(tasks: int, width: int) -> float:
    start = time.perf_counter()
    with ThreadPoolExecutor(width) as pool:
        list(pool.map(lambda _: subprocess.run(["true"], check=True), range(tasks)))
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--widths", default="2,8")
    args = parser.parse_args()
    rows = []
    for width in (int(w) for w in args.widths.split(",")):
        for sandbox in ("none", "bwrap"):
            with tempfile.TemporaryDirectory(prefix="mc-tput-") as tmp:
                root = Path(tmp) / "repo"
                make_repo(root, args.tasks, width, sandbox)
                mc_s, statements, ticks = through_mc(root)
            floor_s = floor(args.tasks, width)
            rows.append((width, sandbox, mc_s, floor_s, statements, ticks))
    n = args.tasks
    print(
        "| concurrency | sandbox | mc apply tasks/s | floor tasks/s | ratio | overhead/task"
        " | statements/task | ticks |"
    )
    print("|---:|---|---:|---:|---:|---:|---:|---:|")
    for width, sandbox, mc_s, floor_s, statements, ticks in rows:
        overhead_ms = (mc_s - floor_s) / n * 1000 * width
        print(
            f"| {width} | {sandbox} | {n / mc_s:.0f} | {n / floor_s:.0f} | {floor_s / mc_s:.2f}× |"
            f" {overhead_ms:.2f} ms | {statements / n:.2f} | {ticks} |"
        )
    print()
    # Per attempt: the extra time each run holds its agent slot (wall × width / tasks); per
    # task: the extra wall time of the whole apply divided by the tasks (what a user waits).
    print("| concurrency | sandbox's added cost per attempt (target <= 10 ms) | per task, wall |")
    print("|---:|---:|---:|")
    by_key = {(w, sb): mc_s for w, sb, mc_s, *_ in rows}
    for width in sorted({w for w, *_ in rows}):
        added_s = by_key[width, "bwrap"] - by_key[width, "none"]
        print(f"| {width} | {added_s / n * 1000 * width:.2f} ms | {added_s / n * 1000:.2f} ms |")


if __name__ == "__main__":
    main()
