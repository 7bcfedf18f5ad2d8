"""`executor: {kind: ray}` through the engine (mc apply, in-process): the mission's agents run
on the Ray cluster, and an attempt whose Ray worker dies is retried by mc's own retry policy."""

from __future__ import annotations

import os
import shutil
import signal
import threading
from pathlib import Path

from helpers.exec_repo import ExecRepo
from helpers.mc import reap
from helpers.sandboxed import marked_leader, run_processes
from helpers.waiting import wait_for
from ray_harness import LocalCluster

from reconciler.engine.launch import DEFAULT_NAMESPACE
from reconciler.runtime.ray_worker import worker_base

FLAKY = """
if ATTEMPT == 1:
    mark(Path(os.environ["MARKS"]) / "first")
    time.sleep(60)
(OUT / "answer.txt").write_text(Path(TASK["repo"], "README.md").read_text())
result(status="done", output={"attempt": ATTEMPT})
"""


def _parent(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def test_a_mission_on_ray_runs_there_and_mc_retries_a_dead_worker(
    ray_cluster: LocalCluster, tmp_path: Path
) -> None:
    repo = ExecRepo(tmp_path / "mission")
    repo.mission(executor={"kind": "ray", "address": ray_cluster.address})
    marks = repo.scratch
    repo.agent("worker", FLAKY, env={"MARKS": str(marks)})
    repo.write("README.md", "from the applied tree\n")
    repo.task("fetch", agent="worker", retry={"max_attempts": 2})
    repo.commit("a mission on Ray")

    def kill_first_worker() -> None:
        wait_for(lambda: (marks / "first").exists(), 90, "the first attempt to start")
        os.kill(_parent(marked_leader(marks / "first")), signal.SIGKILL)

    killer = threading.Thread(target=kill_first_worker, daemon=True)
    killer.start()
    try:
        repo.apply()
    finally:
        killer.join(timeout=1)
        shutil.rmtree(worker_base() / DEFAULT_NAMESPACE, ignore_errors=True)
    assert repo.task_row("fetch").state == "DONE"
    runs = repo.runs("fetch")
    assert [r.status for r in runs] == ["abandoned", "done"]
    assert "the Ray worker running it died" in (runs[0].error or "")
    assert repo.task_row("fetch").output == {"attempt": 2}


SLOW = """
mark(Path(os.environ["MARKS"]) / f"started-{ATTEMPT}")
time.sleep(4)
result(status="done", output={"attempt": ATTEMPT})
"""


def test_mc_killed_mid_run_reattaches_the_ray_run_and_records_it_once(
    ray_cluster: LocalCluster, tmp_path: Path
) -> None:
    repo = ExecRepo(tmp_path / "mission")
    repo.mission(executor={"kind": "ray", "address": ray_cluster.address})
    marks = repo.scratch
    repo.agent("slow", SLOW, env={"MARKS": str(marks)})
    repo.task("long", agent="slow", retry={"max_attempts": 3})
    repo.commit("a slow run on Ray")
    first = repo.mc_background("apply", "--auto-approve")
    try:
        wait_for((marks / "started-1").exists, 90, "the run to start on the cluster")
        run_id = (marks / "started-1").read_text().split()[1]
        first.send_signal(signal.SIGKILL)  # the control plane dies; the run goes on
        first.wait(timeout=10)
        assert run_processes(run_id), "the Ray run died with its control plane"
        second = repo.mc("apply", "--auto-approve")
        assert second.returncode == 0, second.stderr
    finally:
        reap(first)
        shutil.rmtree(worker_base() / DEFAULT_NAMESPACE, ignore_errors=True)
    assert repo.task_row("long").state == "DONE"
    runs = repo.runs("long")
    assert [(r.id, r.status) for r in runs] == [(run_id, "done")]  # one run, recorded once
    assert not (marks / "started-2").exists()  # never run again
    assert len(repo.events("run.recovered")) == 1
