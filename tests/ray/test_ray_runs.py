"""The Ray executor on a real local cluster: runs succeed with the local executor's protocol
and containment, resources place them, nothing listens beyond loopback."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import pytest
from helpers.git import git
from helpers.sandboxed import run_leader
from ray_harness import LocalCluster, RayAgents, drive, interpreter

from reconciler.commands.doctor import check_ray
from reconciler.runtime.mission_tree import tree_path
from reconciler.runtime.ray_executor import RayExecutor
from reconciler.runtime.ray_support import RayUnavailable
from reconciler.runtime.sandbox import MissionTree, Mount, Sandbox


def test_the_cluster_and_the_driver_listen_on_loopback_only(
    ray_cluster: LocalCluster, ray_executor: RayExecutor
) -> None:
    listeners = ray_cluster.listeners()
    assert len(listeners) >= 6  # GCS, two raylets, two object managers, client server, ...
    outside = [(addr, pid) for addr, pid in listeners if not _loopback(addr)]
    assert outside == []


def _loopback(addr: str) -> bool:
    host = addr.rsplit(":", 1)[0].strip("[]")
    return host.startswith("127.") or host == "::ffff:127.0.0.1"


def test_a_run_succeeds_with_its_output_drops_and_redacted_logs(
    ray_executor: RayExecutor, ray_agents: RayAgents
) -> None:
    req = ray_agents.request(
        """
        (OUT / "report.md").write_text("# found it")
        print("token is", os.environ["API_TOKEN"])
        result(status="done", output={"task": TASK["prompt"]})
        """,
        env={"API_TOKEN": "s3cr3t-token-value"},
    )
    ray_executor.launch(req)
    outcome = drive(ray_executor, {req.run_id})[req.run_id]
    assert (outcome.status, outcome.error, outcome.output) == ("done", None, {"task": "do it"})
    assert [(d.path, d.size, d.media_type) for d in outcome.drops] == [
        ("report.md", 10, "text/markdown")
    ]
    assert outcome.drops[0].local_path.read_bytes() == b"# found it"
    assert outcome.stdout_path == req.workspace / "stdout.log"
    assert outcome.stdout_path.read_text() == "token is [redacted]\n"
    assert json.loads((req.workspace / "task.json").read_text())["prompt"] == "do it"


def test_a_failing_agent_fails_as_it_would_locally(
    ray_executor: RayExecutor, ray_agents: RayAgents
) -> None:
    crash = ray_agents.request("sys.exit(3)")
    refuse = ray_agents.request('result(status="failed", error="cannot do it")')
    missing = ray_agents.request("pass", sandbox=Sandbox())  # no interpreter in the sandbox
    for req in (crash, refuse, missing):
        ray_executor.launch(req)
    got = drive(ray_executor, {crash.run_id, refuse.run_id, missing.run_id})
    assert (got[crash.run_id].status, got[crash.run_id].exit_code) == ("retry", 3)
    assert (got[refuse.run_id].status, got[refuse.run_id].error) == ("failed", "cannot do it")
    assert got[missing.run_id].status == "failed"
    assert "agent command not found" in (got[missing.run_id].error or "")


def test_an_unconfined_agent_is_refused(ray_executor: RayExecutor, ray_agents: RayAgents) -> None:
    req = ray_agents.request('result(status="done")', sandbox=None)
    ray_executor.launch(req)
    outcome = drive(ray_executor, {req.run_id})[req.run_id]
    assert outcome.status == "failed"
    assert (outcome.error or "").startswith("sandbox: none cannot run on Ray")


def test_a_resource_tagged_run_waits_for_and_lands_on_the_node_with_it(
    ray_cluster: LocalCluster, ray_executor: RayExecutor, ray_agents: RayAgents, tmp_path: Path
) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()
    code = f"""
        Path({str(marks)!r}, os.environ["MC_RUN_ID"]).write_text("here")
        time.sleep(2)
        result(status="done")
        """
    reqs = [
        ray_agents.request(code, resources={"CPU": 0.1, "browser": 1}, mounts=[Mount(marks, True)])
        for _ in range(2)
    ]
    for req in reqs:
        ray_executor.launch(req)
    checked: set[str] = set()  # one at a time (the cluster has one `browser`), in any order
    give_up = time.monotonic() + 60
    while len(checked) < len(reqs):
        assert time.monotonic() < give_up, "the runs did not both start"
        for req in reqs:
            leader = run_leader(req.run_id) if (marks / req.run_id).exists() else None
            if req.run_id in checked or leader is None:
                continue
            assert _session(_parent(leader)) == ray_cluster.sessions[1]  # the `browser` node
            checked.add(req.run_id)
        time.sleep(0.05)
    got = drive(ray_executor, {r.run_id for r in reqs})
    assert [got[r.run_id].status for r in reqs] == ["done", "done"]
    a, b = sorted(got.values(), key=lambda o: o.started_at)
    assert b.started_at >= a.ended_at - 0.05  # the second waited for the first's browser


def _parent(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def _session(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[3])


def test_the_agent_sees_the_applied_tree_and_not_the_control_plane(
    ray_executor: RayExecutor, ray_agents: RayAgents, tmp_path: Path
) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "mission.md").write_text("the plan\n")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "plan")
    commit = git(repo, "rev-parse", "HEAD")
    (repo / "secret.txt").write_text("control plane only\n")  # never committed
    state = tmp_path / ".mc" / "state.duckdb"
    state.parent.mkdir(parents=True, exist_ok=True)
    state.write_text("the control plane's state")
    tree = MissionTree(repo, commit, tree_path(tmp_path / ".mc", commit))
    code = f"""
        repo = Path(os.environ["MC_REPO"])
        seen = {{"plan": (repo / "mission.md").read_text()}}
        for name, path in [("state", {str(state)!r}), ("secret", {str(repo / "secret.txt")!r}),
                           ("git", {str(repo / ".git" / "HEAD")!r})]:
            try:
                seen[name] = Path(path).read_text()
            except OSError as exc:
                seen[name] = type(exc).__name__
        seen["repo_is_tree"] = str(repo) == TASK["repo"]
        result(status="done", output=seen)
        """
    req = ray_agents.request(
        code,
        sandbox=Sandbox(tree=tree, mounts=interpreter(), protected=(repo,)),
        env={"MC_REPO": str(tree.path)},
        task_json={"prompt": "read", "repo": str(tree.path)},
    )
    ray_executor.launch(req)
    outcome = drive(ray_executor, {req.run_id})[req.run_id]
    assert outcome.status == "done", outcome.error
    assert outcome.output == {
        "plan": "the plan\n",
        "state": "FileNotFoundError",
        "secret": "FileNotFoundError",
        "git": "FileNotFoundError",
        "repo_is_tree": True,
    }


def test_doctor_says_whether_the_cluster_answers(
    ray_cluster: LocalCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RAY_ADDRESS", ray_cluster.address)
    up = check_ray()
    assert (up.status, up.detail) == ("ok", f"cluster at {ray_cluster.address} reachable")
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    address = f"127.0.0.1:{closed.getsockname()[1]}"
    closed.close()
    monkeypatch.setenv("RAY_ADDRESS", address)
    down = check_ray()
    assert down.status == "broken" and not down.required
    assert (down.detail or "").startswith(f"cluster at {address} not reachable")


def test_a_second_cluster_in_one_process_is_refused_saying_why(
    ray_executor: RayExecutor, namespace: str
) -> None:
    with pytest.raises(RayUnavailable, match="mc joins one Ray cluster per process"):
        RayExecutor("127.0.0.1:1", namespace)
