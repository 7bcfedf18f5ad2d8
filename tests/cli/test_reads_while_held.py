"""Issue 15, item 2: while `mc apply` drives a slow agent, every read command answers through
it (its holder socket) and says so; `mc retry` is queued through it; afterwards the same
commands read the state file themselves and say nothing about a holder."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from helpers.exec_repo import ExecRepo
from helpers.mc import reap
from helpers.reads import READS, check_reads, held_mission, stop, task_state, wait_state
from helpers.waiting import wait_until


def test_every_read_answers_while_mc_apply_drives_a_slow_agent(repo: ExecRepo) -> None:
    started, release = held_mission(repo)
    repo.task("after-long", agent="slow", depends_on=["long"])  # its agent is busy with `long`
    repo.commit("a task that waits for the slow one")
    apply = repo.mc_background("apply", "--auto-approve")
    try:
        wait_until(started.exists, 60, "the slow agent to start")
        socket = repo.mc_dir / "holder.sock"
        assert stat.S_ISSOCK(socket.stat().st_mode)
        assert stat.S_IMODE(socket.stat().st_mode) == 0o600
        wait_state(repo, "broken", "FAILED")
        wait_state(repo, "wf-1.s", "DONE")

        check_reads(repo, "mc apply", apply.pid)
        waiting = repo.mc_json("task", "long-2")
        assert waiting["why"]["category"] == "capacity", waiting["why"]
        assert waiting["why"]["detail"] == "every agent that could take it is busy (slow 1/1)"
        after = repo.mc_json("task", "after-long")["why"]
        assert (after["category"], after["detail"]) == (
            "dependency",
            "waiting for long (IN_PROGRESS)",
        ), after

        retried = repo.mc("retry", "broken")
        assert retried.returncode == 0, retried.stderr
        assert "Requeued broken" in retried.stdout
        assert f"(from `mc apply`, pid {apply.pid}" in retried.stderr
        wait_state(repo, "broken", "DONE")
        assert task_state(repo, "long") == "IN_PROGRESS"
        release.write_text("go")
        _, err = stop(apply)
    finally:
        release.write_text("go")
        reap(apply)
    assert apply.returncode == 0, err
    assert not (repo.mc_dir / "holder.sock").exists()
    for args, _ in READS:  # the state file is free again: read directly, no note
        done = repo.mc(*args)
        assert done.returncode == 0, done.stderr
        assert "which holds the state" not in done.stderr
    assert [e.subject for e in repo.events("retry.requested")] == ["Task/broken"]


def test_a_planted_socket_is_never_asked(repo: ExecRepo, tmp_path: Path) -> None:
    """A socket in .mc/ served by another process than the lock's holder is refused."""
    import socket as sockets

    started, release = held_mission(repo)
    apply = repo.mc_background("apply", "--auto-approve")
    impostor = sockets.socket(sockets.AF_UNIX)
    try:
        wait_until(started.exists, 60, "the slow agent to start")
        real = repo.mc_dir / "holder.sock"
        os.replace(real, tmp_path / "moved.sock")  # keep the real one out of the way
        short = tmp_path / "i.sock"
        impostor.bind(str(short))
        impostor.listen()
        os.replace(short, real)

        done = repo.mc("status")

        assert done.returncode == 1
        assert "not by pid" in done.stderr and f"pid {apply.pid}" in done.stderr
        assert "Traceback" not in done.stderr
    finally:
        impostor.close()
        release.write_text("go")
        stop(apply)
        reap(apply)
