"""The Ray executor when things go wrong: a worker killed, a cancel, a timeout, a silent
worker, a control plane restarted mid-run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from helpers.sandboxed import run_leader, run_processes
from ray_harness import HERE, LocalCluster, RayAgents, drive, wait_for

from reconciler.runtime.ray_executor import LEDGER_NAME, RayExecutor
from reconciler.runtime.sandbox import Mount

SLEEPER = """
Path(MARKS, os.environ["MC_RUN_ID"]).write_text("started")
time.sleep(60)
result(status="done")
"""


def _sleeper(agents: RayAgents, marks: Path) -> tuple[str, Path]:
    marks.mkdir(exist_ok=True)
    return f"MARKS = {str(marks)!r}\n" + SLEEPER, marks


def _gone(run_id: str, within: float = 10.0) -> bool:
    give_up = time.monotonic() + within
    while run_processes(run_id):
        if time.monotonic() > give_up:
            return False
        time.sleep(0.1)
    return True


def _parent(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def test_a_killed_worker_process_abandons_the_attempt_and_the_next_one_runs(
    ray_executor: RayExecutor, ray_agents: RayAgents, tmp_path: Path
) -> None:
    code, marks = _sleeper(ray_agents, tmp_path / "marks")
    first = ray_agents.request(code, mounts=[Mount(marks, True)], task="flaky", attempt=1)
    ray_executor.launch(first)
    wait_for(marks / first.run_id)
    leader = run_leader(first.run_id)
    assert leader is not None
    os.kill(_parent(leader), signal.SIGKILL)  # the Ray worker process running the task
    outcome = drive(ray_executor, {first.run_id})[first.run_id]
    assert outcome.status == "abandoned"
    assert "the Ray worker running it died" in (outcome.error or "")
    assert _gone(first.run_id)  # bwrap --die-with-parent took the agent with it
    # Ray retried nothing (max_retries=0): the next attempt is mc's, and it runs.
    second = ray_agents.request('result(status="done", output="again")', task="flaky", attempt=2)
    ray_executor.launch(second)
    again = drive(ray_executor, {second.run_id})[second.run_id]
    assert (again.status, again.output) == ("done", "again")
    assert not marks.joinpath(second.run_id).exists()


def test_cancel_kills_the_run_on_its_worker(
    ray_executor: RayExecutor, ray_agents: RayAgents, tmp_path: Path
) -> None:
    code, marks = _sleeper(ray_agents, tmp_path / "marks")
    req = ray_agents.request(code, mounts=[Mount(marks, True)])
    ray_executor.launch(req)
    wait_for(marks / req.run_id)
    assert run_processes(req.run_id)
    began = time.monotonic()
    ray_executor.cancel(req.run_id, "the task was deleted")
    outcome = drive(ray_executor, {req.run_id})[req.run_id]
    assert (outcome.status, outcome.error) == ("canceled", "canceled: the task was deleted")
    assert time.monotonic() - began < 10
    assert _gone(req.run_id)


def test_a_run_past_its_timeout_is_stopped_on_the_worker(
    ray_executor: RayExecutor, ray_agents: RayAgents, tmp_path: Path
) -> None:
    code, marks = _sleeper(ray_agents, tmp_path / "marks")
    req = ray_agents.request(code, mounts=[Mount(marks, True)], timeout_s=1.0)
    ray_executor.launch(req)
    outcome = drive(ray_executor, {req.run_id})[req.run_id]
    assert outcome.status == "retry"
    assert (outcome.error or "").startswith("timed out after 1s")
    assert outcome.stdout_path is not None and outcome.stdout_path.exists()
    assert _gone(req.run_id)


def test_a_silent_worker_is_canceled_through_ray_and_abandoned(
    ray_cluster: LocalCluster, namespace: str, ray_agents: RayAgents, tmp_path: Path
) -> None:
    # Beats every 30 s but silence is tolerated for 1 s: the control plane's backstop fires
    # (the one a hung node or a partition would trip) and ray.cancel(force=True) ends it.
    impatient = RayExecutor(ray_cluster.address, namespace, silence_s=1.0, beat_every_s=30.0)
    code, marks = _sleeper(ray_agents, tmp_path / "marks")
    req = ray_agents.request(code, mounts=[Mount(marks, True)])
    impatient.launch(req)
    outcome = drive(impatient, {req.run_id})[req.run_id]
    assert outcome.status == "abandoned"
    assert outcome.error == "abandoned: no word from its Ray worker for 1s"
    assert _gone(req.run_id)
    impatient.shutdown(0.5)


def test_a_control_plane_restart_loses_nothing_and_records_nothing_twice(
    ray_cluster: LocalCluster, namespace: str, tmp_path: Path
) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()
    env = {**ray_cluster.env, "PYTHONPATH": f"{HERE}:{HERE.parent}:{HERE.parents[1]}"}
    old = subprocess.Popen(
        [sys.executable, str(HERE / "ray_control_plane.py"), ray_cluster.address, namespace,
         str(tmp_path), str(marks)],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert old.stdout is not None
        run_id = old.stdout.readline().strip()
        assert run_id, "the old control plane launched nothing"
        wait_for(marks / run_id)
    finally:
        old.kill()  # SIGKILL mid-run: no shutdown, no cancel
        old.wait()
    assert run_processes(run_id)  # the run goes on without its control plane
    new = RayExecutor(ray_cluster.address, namespace, grace_s=0.5)
    assert run_id in new.held()
    assert new.reattach([run_id, "run-nobody-knows"]) == {run_id}
    assert new.running() == [run_id]
    outcome = drive(new, {run_id}, within=60)[run_id]
    assert (outcome.status, outcome.output) == ("done", "finished")
    assert [d.path for d in outcome.drops] == ["late.txt"]
    assert (outcome.stdout_path is not None) and outcome.stdout_path.parent.name == "1"
    # Handed out once: nothing more from this control plane, nothing for the next one.
    time.sleep(0.5)
    assert new.poll() == []
    new.forget_all()
    third = RayExecutor(ray_cluster.address, namespace, grace_s=0.5)
    assert run_id not in third.held()
    assert third.poll() == []


def test_a_lost_ledger_abandons_its_runs_and_the_next_launch_makes_a_new_one(
    ray_executor: RayExecutor, ray_agents: RayAgents, namespace: str, tmp_path: Path
) -> None:
    import ray

    code, marks = _sleeper(ray_agents, tmp_path / "marks")
    req = ray_agents.request(code, mounts=[Mount(marks, True)])
    ray_executor.launch(req)
    wait_for(marks / req.run_id)
    ray.kill(ray.get_actor(LEDGER_NAME, namespace=namespace), no_restart=True)
    outcome = drive(ray_executor, {req.run_id})[req.run_id]
    assert outcome.status == "abandoned"
    assert _gone(req.run_id)  # its task died with its owner, the agent with its task
    again = ray_agents.request('result(status="done", output="after")')
    ray_executor.launch(again)
    assert drive(ray_executor, {again.run_id})[again.run_id].output == "after"
