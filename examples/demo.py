"""`make demo`: run the research mission end to end in a temporary git repo, step by step.

Copies examples/research-mission into a new directory, commits it, then runs the real `mc`
CLI on it: plan, apply (three offline agents research, draft and review a post; the reviewer
sends the draft back once), status, runs, memory and drops, and prints the draft. The
directory is kept so you can look around afterwards. Needs only git and this project.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

WORKFLOWS = Path(__file__).resolve().parent / "workflows-mission"
EXAMPLE = Path(__file__).resolve().parent / "research-mission"
_SCRIPT = Path(sys.executable).with_name("mc")
MC = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "cli"]
GIT_IDENTITY = ["-c", "user.name=mc demo", "-c", "user.email=demo@localhost"]


def heading(text: str) -> None:
    print(f"\n\033[1m== {text}\033[0m\n" if sys.stdout.isatty() else f"\n== {text}\n", flush=True)


def run(argv: list[str], cwd: Path, capture: bool = False) -> str:
    """Run a command, showing its output (or returning it); stop the demo if it fails."""
    env = dict(os.environ)
    if not sys.stdout.isatty():
        env.setdefault("COLUMNS", "120")  # tables in a log or CI are not squeezed to 80
    proc = subprocess.run(argv, cwd=cwd, env=env, text=True, capture_output=capture, check=False)
    if proc.returncode != 0:
        detail = (proc.stderr or "").strip() if capture else ""
        sys.exit(f"demo: `{' '.join(argv)}` exited {proc.returncode}. {detail}".rstrip())
    return proc.stdout or ""


def mc(*args: str, cwd: Path, capture: bool = False) -> str:
    if not capture:
        print(f"$ mc {' '.join(args)}", flush=True)
    return run([*MC, *args], cwd, capture)


def make_repo(example: Path = EXAMPLE, base: Path | None = None) -> Path:
    if shutil.which("git") is None:
        sys.exit("demo: git is not on PATH; install git and run `make demo` again")
    root = (base or Path(tempfile.mkdtemp(prefix="mc-demo-"))) / example.name
    shutil.copytree(example, root, ignore=shutil.ignore_patterns("__pycache__", ".mc"))
    run(["git", "init", "-q"], root)
    run(["git", "add", "-A"], root)
    commit = ["git", *GIT_IDENTITY, "-c", "commit.gpgsign=false", "commit", "-q", "-m"]
    run([*commit, f"{example.name} (make demo)"], root)
    return root


def main() -> None:
    heading("1. A mission repo: agents, tasks and a corpus, committed to git")
    root = make_repo()
    print(f"Copied {EXAMPLE.relative_to(EXAMPLE.parents[1])} to {root} and committed it:")
    print(run(["git", "ls-files"], root, capture=True))

    heading("2. mc plan: what applying the commit would change")
    mc("plan", cwd=root)

    heading("3. mc apply: record the changes, then drive the agents until the work settles")
    mc("apply", "--auto-approve", cwd=root)

    heading("4. mc status: tasks by state")
    mc("status", cwd=root)

    heading("5. mc runs: one row per attempt (the reviewer sent the draft back once)")
    mc("runs", cwd=root)
    review = json.loads(mc("runs", "review-post", "--json", cwd=root, capture=True))
    first = min(review, key=lambda r: r["attempt"])
    print(f"\nWhy the reviewer sent the draft back ({first['status']}): {first['error']}")

    heading("6. mc memory: what the researcher carries into its next run")
    mc("memory", "researcher", cwd=root)

    heading("7. mc drops draft-post: the files the writer left in out/")
    mc("drops", "draft-post", cwd=root)
    drops = json.loads(mc("drops", "draft-post", "--json", cwd=root, capture=True))
    draft = next(d for d in drops if d["path"] == "draft.md")
    heading("8. The draft")
    print(Path(draft["file"]).read_text(encoding="utf-8"))

    heading("9. Workflows: four DAGs of offline agents working on a sample code base")
    flows = make_repo(WORKFLOWS, root.parent)
    mc("apply", "--auto-approve", cwd=flows)
    mc("runs", "-w", cwd=flows)
    heading("10. mc run-status add-word-count: the feature-dev DAG (verify sent implement back)")
    mc("run-status", "add-word-count", cwd=flows)

    heading("Done")
    print(f"The mission repos and their state are kept in {root.parent}. Look around")
    print("(after `. .venv/bin/activate`, which puts `mc` on your PATH):")
    for args in ("events", "logs review-post", "drops review-post", "memory reviewer"):
        print(f"  mc --repo {root} {args}")
    print(f"  mc --repo {flows} run-status fix-empty-average")
    if os.environ.get("MC_DEMO_NO_SERVE"):
        return
    heading("11. mc serve: the dashboard (Ctrl-C to stop)")
    print("Open http://127.0.0.1:4100/ — commit a change in the repo and watch it happen.")
    os.execv(MC[0], [*MC, "--repo", str(flows), "serve"])


if __name__ == "__main__":
    main()
