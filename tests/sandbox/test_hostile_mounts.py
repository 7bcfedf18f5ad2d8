"""Hostile agents against the sandbox's binds, through the real `mc apply`: an agent with a
writable mount swaps a link under another agent's declared mount while that one is being
launched (the mount check/use race), and an unconfined agent plants a link at the mission
tree's path. Neither reaches the mission repo: what a sandbox binds is the descriptor mc
checked, and a planted tree is refused.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
from helpers.mission_repo import GitRepo

pytestmark = pytest.mark.timeout(120)

# 60 victim runs, 16 at a time. Several agents, not one with concurrency 16: the loop breaker
# quarantines an agent after 5 failed runs, and a run refused in the race counts as failed.
VICTIM_AGENTS, RUNS_EACH = 15, 4
FLIP_SECONDS = 3.0

FLIP = """\
import os, pathlib, sys, time
shared, real, repo, scratch = (pathlib.Path(a) for a in sys.argv[1:5])
(scratch / "flipping").write_text("yes")
tmp, data = shared / ".tmp", shared / "data"
end, n = time.monotonic() + float(sys.argv[5]), 0
while time.monotonic() < end:
    os.symlink(repo if n % 2 else real, tmp)
    os.rename(tmp, data)
    n += 1
os.symlink(real, tmp)
os.rename(tmp, data)
pathlib.Path(os.environ["MC_RESULT_JSON"]).write_text('{"status": "done", "output": %d}' % n)
"""

WAITER = """\
import os, pathlib, sys, time
scratch = pathlib.Path(sys.argv[1])
give_up = time.monotonic() + 10
while not (scratch / "flipping").exists() and time.monotonic() < give_up:
    time.sleep(0.01)
pathlib.Path(os.environ["MC_RESULT_JSON"]).write_text('{"status": "done"}')
"""

VICTIM = """\
import json, os, pathlib, sys
data = pathlib.Path(sys.argv[1])
seen = sorted(os.listdir(data))
try:
    with open(data / ".git" / "config", "a") as fh:
        fh.write("[core]\\n\\tpwned = true\\n")
    tried = "appended"
except OSError as exc:
    tried = type(exc).__name__
out = {"seen": seen, "tried": tried}
pathlib.Path(os.environ["MC_RESULT_JSON"]).write_text(json.dumps({"status": "done", "output": out}))
"""


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def working_tree(root: Path) -> dict[str, str]:
    """Every file of the repo but .git/ and mc's own .mc/, with its digest."""
    return {
        str(p.relative_to(root)): sha256_of(p)
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.relative_to(root).parts[0] not in (".git", ".mc")
    }


@pytest.fixture
def repo(tmp_path: Path) -> GitRepo:
    repo = GitRepo(tmp_path / "mission")
    repo.init()
    repo.write_doc("mission.yaml", "Mission", "hostile-mounts", {})
    return repo


def agent(repo: GitRepo, name: str, code: str, args: list[str], **spec: Any) -> None:
    repo.write(f"agents/{name}.py", code)
    repo.agent(name, command=["python3", f"{{repo}}/agents/{name}.py", *args], **spec)


def test_a_link_swapped_under_a_declared_mount_never_shows_the_repo(
    repo: GitRepo, tmp_path: Path
) -> None:
    shared = tmp_path / "atk" / "shared"
    real = shared / "real"
    real.mkdir(parents=True)
    (real / "marker").write_text("shared data\n")
    data = shared / "data"
    data.symlink_to(real)
    flip_args = [str(shared), str(real), str(repo.root), str(repo.scratch), str(FLIP_SECONDS)]
    agent(repo, "flip", FLIP, flip_args, mounts=[{"path": str(shared), "mode": "rw"}])
    agent(repo, "waiter", WAITER, [str(repo.scratch)])
    victims = []
    for a in range(VICTIM_AGENTS):
        victim = f"victim-{a:02d}"
        mounts = [{"path": str(data), "mode": "rw"}]
        agent(repo, victim, VICTIM, [str(data)], mounts=mounts, concurrency=RUNS_EACH)
        victims += [f"{victim}-{n}" for n in range(RUNS_EACH)]
        for task in victims[-RUNS_EACH:]:  # launched (mount checked) while flip flips
            repo.task(task, agent=victim, depends_on=["flipping"])
    repo.task("flip", agent="flip")
    repo.task("flipping", agent="waiter")
    repo.commit("a flipper and its victims")
    config, tree = sha256_of(repo.root / ".git" / "config"), working_tree(repo.root)

    proc = repo.mc("apply", "--auto-approve")

    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert sha256_of(repo.root / ".git" / "config") == config
    assert working_tree(repo.root) == tree
    assert repo.git("status", "--porcelain") == ""
    flip = repo.task_row("flip")
    assert flip.state == "DONE" and flip.output > 100, flip  # it really flipped, many times
    done = refused = 0
    for task in victims:
        row = repo.task_row(task)
        if row.state == "DONE":
            assert row.output["seen"] == ["marker"], row.output  # the shared folder, never the repo
            assert row.output["tried"] == "FileNotFoundError", row.output
            done += 1
        else:  # opened while the link named the repo: refused for what it is
            runs = repo.runs(task)
            assert runs, (row, proc.stdout, proc.stderr)
            error = str(runs[-1].error)
            assert row.state == "FAILED" and "overlaps the mission repo" in error, error
            refused += 1
    assert done + refused == len(victims)
    assert refused > 0  # the race was run: some victims opened their mount as the repo
    assert not (real / ".git").exists()


PLANTER = """\
import os, pathlib, subprocess, sys
repo = pathlib.Path(sys.argv[1])
head = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"],
                      capture_output=True, text=True, check=True).stdout.strip()
trees = repo / ".mc" / "trees"
trees.mkdir(parents=True, exist_ok=True)
(trees / head).symlink_to(repo)  # the next sandboxed run would read .git, and more
pathlib.Path(os.environ["MC_RESULT_JSON"]).write_text('{"status": "done", "output": "%s"}' % head)
"""

READER = """\
import json, os, pathlib
repo = pathlib.Path(os.environ["MC_REPO"])
out = {"git": (repo / ".git").exists(), "files": sorted(os.listdir(repo))}
pathlib.Path(os.environ["MC_RESULT_JSON"]).write_text(json.dumps({"status": "done", "output": out}))
"""


def test_an_unconfined_agent_cannot_plant_the_next_runs_mission_tree(repo: GitRepo) -> None:
    agent(repo, "planter", PLANTER, ["{repo}"], sandbox="none")
    agent(repo, "reader", READER, [])
    repo.task("planter", agent="planter")
    repo.task("reader", agent="reader", depends_on=["planter"])
    head = repo.commit("an unconfined planter, then a sandboxed reader")
    config = sha256_of(repo.root / ".git" / "config")

    proc = repo.mc("apply", "--auto-approve")

    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert repo.task_row("planter").output == head
    reader = repo.task_row("reader")
    error = str(repo.runs("reader")[-1].error)
    assert reader.state == "FAILED", reader.output
    assert error.startswith(f"unsafe mission tree: {repo.mc_dir / 'trees' / head} is a symlink")
    assert sha256_of(repo.root / ".git" / "config") == config
    planted = repo.mc_dir / "trees" / head
    assert planted.is_symlink()  # refused, not followed, not replaced
    assert reader.output is None  # it never ran
