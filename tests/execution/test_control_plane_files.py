"""The control plane's own files hold even for an agent with no sandbox (issue 12, item 3-4):
real agents, run through the real `mc apply` with `sandbox: none`, attack `.mc/work` and
`.mc/drops`; each attack fails and the run's recorded error says why."""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
from collections.abc import Iterator
from datetime import UTC
from pathlib import Path

import pytest
from helpers.exec_repo import ExecRepo, files_under

pytestmark = pytest.mark.timeout(120)

UNCONFINED = {"sandbox": "none"}  # the attacks below are what the sandbox would also stop


def apply(repo: ExecRepo) -> None:
    repo.commit("agents")
    proc = repo.mc("apply", "--auto-approve")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def last_error(repo: ExecRepo, task: str) -> str:
    return str(repo.runs(task)[-1].error or "")


def stored_bytes_on_disk(repo: ExecRepo) -> int:
    drops = repo.mc_dir / "drops"
    return sum(p.lstat().st_blocks * 512 for p in drops.rglob("*")) if drops.exists() else 0


def test_a_planted_symlink_for_the_next_attempt_is_refused_not_written_through(
    repo: ExecRepo, tmp_path: Path
) -> None:
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "stdout.log").write_text("precious\n")
    repo.agent(
        "linker",
        f"""
        if ATTEMPT == 1:
            Path(os.environ["MC_WORKSPACE"]).parent.joinpath("2").symlink_to({str(victim)!r})
            result(status="retry", error="try again")
        else:
            result(status="done", output="ran in the planted directory")
        """,
        **UNCONFINED,
    )
    repo.task("linker", agent="linker", retry={"max_attempts": 3})
    apply(repo)
    assert (victim / "stdout.log").read_text() == "precious\n"
    assert sorted(p.name for p in victim.iterdir()) == ["stdout.log"]
    runs = repo.runs("linker")
    assert [r.attempt for r in runs] == [1, 2]  # refused permanently: no third try
    assert runs[-1].status == "failed"
    assert "unsafe workspace" in last_error(repo, "linker")
    assert "linker/2 is a symlink" in last_error(repo, "linker")
    assert repo.task_row("linker").state == "FAILED"
    assert (repo.mc_dir / "work" / "linker" / "2").is_symlink()  # left for a person to see


def test_a_2_gib_sparse_drop_fails_the_run_and_nothing_dense_is_stored(repo: ExecRepo) -> None:
    repo.agent(
        "sparse",
        """
        with open(OUT / "huge.bin", "wb") as fh:
            fh.truncate(2 * 1024**3)  # sparse: takes no blocks
        (OUT / "note.md").write_text("fine")
        result(status="done", output="dropped 2 GiB")
        """,
        **UNCONFINED,
    )
    repo.task("sparse", agent="sparse")
    apply(repo)
    assert repo.task_row("sparse").state == "FAILED"
    error = last_error(repo, "sparse")
    assert "out/huge.bin" in error and "drops.max_file" in error and "2.0 GiB" in error
    assert stored_bytes_on_disk(repo) < 1024 * 1024
    with repo.state() as state:
        assert state.reader.drops("sparse") == []


def test_a_hundred_thousand_tiny_files_fail_at_the_count_cap_quickly(repo: ExecRepo) -> None:
    repo.agent(
        "spray",
        """
        for i in range(100_000):
            (OUT / f"f{i:06d}").write_bytes(b"x")
        Path(os.environ["MC_WORKSPACE"], "sprayed_at").write_text(repr(time.time()))
        result(status="done", output="sprayed")
        """,
        **UNCONFINED,
        timeout="90s",
    )
    repo.task("spray", agent="spray")
    apply(repo)
    assert repo.task_row("spray").state == "FAILED"
    error = last_error(repo, "spray")
    assert "1000 files" in error and "drops.max_files" in error
    with repo.state() as state:
        assert state.reader.drops("spray") == []
    run = repo.runs("spray")[-1]
    sprayed_at = float(Path(str(run.workspace), "sprayed_at").read_text())
    assert run.ended_at is not None
    collected_in = run.ended_at.replace(tzinfo=UTC).timestamp() - sprayed_at  # naive UTC
    assert collected_in < 3.0, collected_in
    assert not (repo.mc_dir / "drops").exists() or files_under(repo.mc_dir / "drops") == []


def test_the_missions_drop_limits_reach_the_run(repo: ExecRepo) -> None:
    repo.mission(drops={"max_file": "1Ki", "max_run": "2Ki", "max_files": 5})
    repo.agent(
        "writer",
        """
        (OUT / "small.txt").write_bytes(b"s" * 512)
        (OUT / "big.txt").write_bytes(b"b" * 1500)
        result(status="done", output="two files")
        """,
        **UNCONFINED,
    )
    repo.task("writer", agent="writer")
    apply(repo)
    error = last_error(repo, "writer")
    assert "out/big.txt" in error and "1.0 KiB" in error and "drops.max_file" in error
    assert repo.task_row("writer").state == "FAILED"


@pytest.fixture
def daemon_pids(tmp_path: Path) -> Iterator[Path]:
    """Where swapping daemons record their pid; each is killed when the test ends."""
    pids = tmp_path / "daemons"
    pids.mkdir()
    yield pids
    for pid_file in pids.iterdir():
        with contextlib.suppress(ValueError, ProcessLookupError):
            os.kill(int(pid_file.read_text()), signal.SIGKILL)


SWAPPER = """
import os, sys, time
from pathlib import Path
target, pid_file, end = Path(sys.argv[1]), Path(sys.argv[2]), time.time() + 20
Path(pid_file).write_text(str(os.getpid()))
contents = (b"A" * (4 << 20), b"B" * (4 << 20))
tmp = target.parent.parent / ".swap"  # outside out/: only swap.bin is a drop
i = 0
while time.time() < end:
    i += 1
    tmp.write_bytes(contents[i % 2])
    tmp.replace(target)
"""


def test_a_file_swapped_while_collected_is_stored_under_its_own_hash(
    repo: ExecRepo, daemon_pids: Path
) -> None:
    """A setsid daemon keeps replacing out/swap.bin with one of two contents while mc collects
    it: the stored bytes are one whole content and hash to the sha256 recorded for them."""
    repo.write("agents/swapper.py", SWAPPER)
    swapper = repo.root / "agents" / "swapper.py"
    repo.agent(
        "swap",
        f"""
        import subprocess
        target = OUT / "swap.bin"
        target.write_bytes(b"A" * (4 << 20))
        pid_file = Path({str(daemon_pids)!r}) / "swapper"
        subprocess.Popen([sys.executable, {str(swapper)!r}, str(target), str(pid_file)],
                         start_new_session=True, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
        while not pid_file.exists():
            time.sleep(0.01)
        time.sleep(0.3)  # let it swap for a while
        result(status="done", output="collect me")
        """,
        **UNCONFINED,
    )
    repo.task("swap", agent="swap")
    apply(repo)
    assert repo.task_row("swap").state == "DONE", last_error(repo, "swap")
    with repo.state() as state:
        (drop,) = state.reader.drops("swap")
    stored = (repo.mc_dir / "drops" / drop.sha256[:2] / drop.sha256).read_bytes()
    assert hashlib.sha256(stored).hexdigest() == drop.sha256
    assert stored in (b"A" * (4 << 20), b"B" * (4 << 20))
    assert drop.size == len(stored)
