"""Benchmark: cold and warm `mc plan` on committed repos of 1k/10k/100k tasks vs the YAML floor.

Reports, for each size: cold `mc plan` wall time and peak RSS (the whole process, empty
state), the floor (only `yaml.load` of the same files with CSafeLoader, in-process), their
ratio, and the warm plan time once everything is applied and a commit changes one task (the
blob cache at work; the plan is one `~` line). Run: make bench.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

AGENTS, WORKFLOWS = 100, 50
ENV = {
    **os.environ,
    "GIT_AUTHOR_NAME": "bench",
    "GIT_AUTHOR_EMAIL": "bench@localhost",
    "GIT_COMMITTER_NAME": "bench",
    "GIT_COMMITTER_EMAIL": "bench@localhost",
}
MC = [str(Path(sys.executable).parent / "mc")]


def task_yaml(i: int, tasks: int) -> str:
    deps = f"[t{i - 1:06d}]" if i % 10 else "[]"
    return (
        "apiVersion: mc/v1\nkind: Task\n"
        f"metadata:\n  name: t{i:06d}\n  labels: {{team: t{i % 7}}}\n"
        f"spec:\n  title: Task number {i}\n"
        f"  prompt: Summarize document {i} of {tasks} and list its three main claims.\n"
        f"  agent: a{i % AGENTS:03d}\n  depends_on: {deps}\n  priority: {i % 5}\n"
        "  retry: {max_attempts: 3, initial_interval: 10s}\n  timeout: 10m\n"
    )


def agent_yaml(i: int) -> str:
    return (
        "apiVersion: mc/v1\nkind: Agent\n"
        f"metadata:\n  name: a{i:03d}\n"
        f"spec:\n  role: Worker {i}\n  capabilities: [work, c{i % 10}]\n"
        "  command: [python3, agent.py]\n  concurrency: 2\n  timeout: 5m\n"
    )


def workflow_yaml(i: int) -> str:
    return (
        "apiVersion: mc/v1\nkind: Workflow\n"
        f"metadata:\n  name: w{i:03d}\n"
        "spec:\n  inputs: {goal: {required: true}}\n  steps:\n"
        f"    - {{id: plan, agent: a{i % AGENTS:03d}, prompt: 'Plan {{{{ inputs.goal }}}}'}}\n"
        f"    - {{id: build, agent: a{(i + 1) % AGENTS:03d}, depends_on: [plan]}}\n"
        f"    - {{id: check, agent: a{(i + 2) % AGENTS:03d}, depends_on: [build],"
        " verifies: build}\n"
    )


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, env=ENV, check=True, capture_output=True)


def make_repo(root: Path, tasks: int) -> list[Path]:
    for sub in ("agents", "tasks", "workflows"):
        (root / sub).mkdir(parents=True)
    (root / "mission.yaml").write_text(
        "apiVersion: mc/v1\nkind: Mission\nmetadata: {name: bench}\nspec: {mode: normal}\n"
    )
    files = [root / "mission.yaml"]
    for i in range(AGENTS):
        files.append(root / f"agents/a{i:03d}.yaml")
        files[-1].write_text(agent_yaml(i))
    for i in range(WORKFLOWS):
        files.append(root / f"workflows/w{i:03d}.yaml")
        files[-1].write_text(workflow_yaml(i))
    for i in range(tasks):
        files.append(root / f"tasks/t{i:06d}.yaml")
        files[-1].write_text(task_yaml(i, tasks))
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "bench mission")
    return files


def floor(files: list[Path]) -> float:
    """Only reading and yaml-loading the same files with the C loader: the cost of parsing."""
    start = time.perf_counter()
    for f in files:
        list(yaml.load_all(f.read_bytes(), Loader=yaml.CSafeLoader))
    return time.perf_counter() - start


def mc_plan(repo: Path) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of one whole `mc plan` process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    proc = subprocess.run([*MC, "--repo", str(repo), "plan"], env=ENV, capture_output=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"mc plan failed: {proc.stderr.decode()[-2000:]}")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return wall, max(peak, before) / 1024


def measure(tasks: int, workdir: Path) -> dict[str, float]:
    repo = workdir / f"repo-{tasks}"
    files = make_repo(repo, tasks)
    floor_s = min(floor(files) for _ in range(2))
    shutil.rmtree(repo / ".mc", ignore_errors=True)
    cold_s, rss = mc_plan(repo)
    # day two: everything applied, then one task changes; every other blob comes from the cache
    subprocess.run(
        [*MC, "--repo", str(repo), "apply", "--auto-approve", "--no-wait"],
        env=ENV,
        check=True,
        capture_output=True,
    )
    target = repo / "tasks" / f"t{tasks // 2:06d}.yaml"
    target.write_text(target.read_text().replace("priority:", "priority: 9\n  # was:"))
    git(repo, "commit", "-qam", "change one task")
    warm_s = min(mc_plan(repo)[0] for _ in range(3))
    return {"tasks": tasks, "floor": floor_s, "cold": cold_s, "rss": rss, "warm": warm_s}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="1000,10000,100000")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="mc-bench-") as tmp:
        for size in (int(s) for s in args.sizes.split(",")):
            rows.append(measure(size, Path(tmp)))
            r = rows[-1]
            print(
                f"measured {size} tasks: cold {r['cold']:.2f}s floor {r['floor']:.2f}s",
                file=sys.stderr,
            )
    print(
        "| tasks | cold `mc plan` | peak RSS | floor (CSafeLoader) | cold / floor"
        " | warm `mc plan` |"
    )
    print("|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['tasks']:,} | {r['cold']:.2f} s | {r['rss']:.0f} MiB | {r['floor']:.2f} s"
            f" | {r['cold'] / r['floor']:.2f}× | {r['warm']:.2f} s |"
        )


if __name__ == "__main__":
    main()
