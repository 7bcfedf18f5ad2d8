"""Hostile agents against the sandbox (issue 12): each attack, tried by a real agent through the
real `mc apply` (and `mc serve`), fails, and what the run recorded says why.

The agents are small Python programs run by the system's `python3`, as a user's would be. They
learn the mission repo's path the way a real attacker would: their workspace is
`<repo>/.mc/work/<task>/<attempt>`, so the repo is four levels up.
"""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers.mission_repo import GitRepo
from helpers.serve import served
from helpers.waiting import wait_until

pytestmark = pytest.mark.timeout(120)

MARKER = "mc-hostile-marker-7f3a9c"  # a secret in mc's environment no agent was given

# The agent's view of where things are (same paths inside and outside the sandbox).
PRELUDE = """\
import json, os, sys, pathlib
WS = pathlib.Path(os.environ["MC_WORKSPACE"])
REPO = WS.parents[3]
OUT = pathlib.Path(os.environ["MC_OUT_DIR"])

def result(status="done", **fields):
    pathlib.Path(os.environ["MC_RESULT_JSON"]).write_text(json.dumps({"status": status, **fields}))

def attempt(what, fn):
    try:
        return f"{what}: {fn()!r}"
    except Exception as exc:
        return f"{what}: refused ({type(exc).__name__})"
"""


class HostileRepo(GitRepo):
    """A mission with one agent per attack; `python3` from the system, as users run it."""

    def hostile(self, name: str, code: str, **agent: Any) -> None:
        self.write(f"agents/{name}.py", PRELUDE + code)
        agent.setdefault("command", ["python3", f"{{repo}}/agents/{name}.py"])
        self.agent(name, **agent)
        self.task(name, agent=name)

    def run_all(self, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        self.commit("hostile agents")
        proc = self.mc("apply", "--auto-approve", env=env)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return proc

    def output(self, task: str) -> Any:
        return self.task_row(task).output

    def run_error(self, task: str) -> str:
        return str(self.runs(task)[-1].error or "")


@pytest.fixture
def repo(tmp_path: Path) -> HostileRepo:
    repo = HostileRepo(tmp_path / "mission")
    repo.init()
    repo.write_doc("mission.yaml", "Mission", "hostile", {})
    return repo


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def tree_digest(top: Path) -> dict[str, str]:
    return {
        str(p.relative_to(top)): sha256_of(p)
        for p in sorted(top.rglob("*"))
        if p.is_file() and not p.is_symlink()
    }


def test_an_agent_cannot_rewrite_the_repos_git_config(repo: HostileRepo) -> None:
    repo.hostile(
        "forger",
        """
import subprocess
tries = [
    attempt("git config", lambda: subprocess.run(
        ["git", "-C", str(REPO), "config", "gpg.ssh.program", "/tmp/fake-ssh-keygen"],
        capture_output=True, text=True).returncode),
    attempt("append", lambda: open(REPO / ".git" / "config", "a").write("[core]\\n")),
    attempt("via MC_REPO", lambda: (pathlib.Path(os.environ["MC_REPO"]) / ".git").exists()),
]
result(output=tries)
""",
    )
    repo.commit("hostile agents")
    before = sha256_of(repo.root / ".git" / "config")
    repo.mc("apply", "--auto-approve")
    assert sha256_of(repo.root / ".git" / "config") == before
    assert "sshProgram" not in repo.git("config", "--list", "--local")
    tries = repo.output("forger")
    assert tries[0] != "git config: 0", tries  # git found no repository to configure
    assert tries[1].startswith("append: refused"), tries
    assert tries[2] == "via MC_REPO: False", tries  # the applied tree has no .git


def test_an_agent_has_no_capabilities_to_remount_what_is_read_only(repo: HostileRepo) -> None:
    repo.hostile("prod", 'OUT.joinpath("report.md").write_text("signed off")\nresult()\n')
    repo.hostile(
        "remounter",
        """
import subprocess
drop = json.loads(pathlib.Path(os.environ["MC_TASK_JSON"]).read_text())
drop = drop["upstream"]["prod"]["drops"][0]["file"]
caps = [l for l in open("/proc/self/status") if l.startswith("CapEff")][0].split()[1]
def remount(path, then):
    done = subprocess.run(["mount", "-o", "remount,rw,bind", path], capture_output=True)
    if done.returncode != 0:
        raise PermissionError(done.stderr.decode(errors="replace").strip())
    return then()
tree = os.environ["MC_REPO"]
tries = [
    attempt("tree", lambda: remount(tree, lambda: open(tree + "/PWNED", "w").write("x"))),
    attempt("drop", lambda: remount(drop, lambda: open(drop, "w").write("TAMPERED"))),
    attempt("etc", lambda: remount("/etc", lambda: open("/etc/mc-atk", "w").write("x"))),
    attempt("usr", lambda: remount("/usr", lambda: open("/usr/mc-atk", "w").write("x"))),
]
result(output={"caps": caps, "tries": tries})
""",
    )
    repo.task("remounter", agent="remounter", depends_on=["prod"])
    repo.run_all()
    seen = repo.output("remounter")
    assert int(seen["caps"], 16) == 0, seen
    assert all(": refused" in t for t in seen["tries"]), seen
    assert not Path("/etc/mc-atk").exists() and not Path("/usr/mc-atk").exists()
    assert not list(repo.mc_dir.glob("trees/*/PWNED"))
    for stored in (repo.mc_dir / "drops").rglob("*"):
        if stored.is_file():
            assert hashlib.sha256(stored.read_bytes()).hexdigest() == stored.name


def test_an_agent_cannot_plant_anything_in_mcs_cache_or_state(repo: HostileRepo) -> None:
    repo.hostile(
        "planter",
        """
tries = []
for rel in (".mc/cache/specs-v5.json", ".mc/cache/specs-v3.pickle", ".mc/state.duckdb"):
    tries.append(attempt(rel, lambda: (REPO / rel).write_bytes(b"\\x80\\x04 planted")))
result(output=tries)
""",
    )
    repo.run_all()
    for rel in (".mc/cache/specs-v3.pickle",):
        assert not (repo.root / rel).exists()
    for path in (repo.root / ".mc").rglob("*"):
        if path.is_file():
            assert b"planted" not in path.read_bytes()[:64], path
    assert repo.mc("plan").returncode == 0


def test_an_agent_cannot_read_mcs_environment_through_proc(repo: HostileRepo) -> None:
    repo.hostile(
        "snoop",
        """
found = {}
for entry in pathlib.Path("/proc").iterdir():
    if entry.name.isdigit():
        try:
            found[entry.name] = (entry / "environ").read_bytes().decode(errors="replace")
        except OSError as exc:
            found[entry.name] = f"refused {exc.errno}"
(OUT / "environ.txt").write_text(json.dumps(found))
result(output={"pids": sorted(found), "ppid": os.getppid()})
""",
    )
    repo.run_all(env={"MC_TEST_SECRET": MARKER, "AWS_SECRET_ACCESS_KEY": MARKER})
    seen = repo.output("snoop")
    assert seen["ppid"] == 1  # bwrap is the sandbox's first process; mc is not in view
    assert len(seen["pids"]) <= 3, seen  # only the sandbox's own processes are visible
    for path in (repo.root / ".mc").rglob("*"):
        if path.is_file():
            assert MARKER.encode() not in path.read_bytes(), f"{MARKER} leaked into {path}"


def test_processes_an_agent_leaves_behind_die_with_its_run(
    repo: HostileRepo, tmp_path: Path
) -> None:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    repo.hostile(
        "daemon",
        f"""
import time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        for i in range(100):
            pathlib.Path("{scratch}/alive").write_text(str(time.time()))
            time.sleep(0.1)
        os._exit(0)
    os._exit(0)
time.sleep(0.3)
result(output="left a daemon")
""",
        mounts=[{"path": str(scratch), "mode": "rw"}],
    )
    repo.run_all()
    assert repo.task_row("daemon").state == "DONE"
    ended = time.time()
    time.sleep(3.0)
    last = float((scratch / "alive").read_text())
    assert last < ended + 0.5, "the daemon outlived its run"


def test_a_planted_symlink_does_not_redirect_the_next_attempt(
    repo: HostileRepo, tmp_path: Path
) -> None:
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "stdout.log").write_text("precious\n")
    repo.hostile(
        "linker",
        f"""
if os.environ["MC_ATTEMPT"] == "1":
    (WS.parent / "2").symlink_to("{victim}")
    result("retry", error="try again")
else:
    result(output=str(WS))
""",
    )
    repo.task("linker", agent="linker", retry={"max_attempts": 2, "initial_interval": "0s"})
    repo.run_all()
    assert (victim / "stdout.log").read_text() == "precious\n"
    assert sorted(p.name for p in victim.iterdir()) == ["stdout.log"]
    second = repo.mc_dir / "work" / "linker" / "2"
    assert not second.is_symlink()


def test_a_sparse_file_bigger_than_the_drop_caps_fails_the_run_without_filling_the_disk(
    repo: HostileRepo,
) -> None:
    repo.hostile(
        "sparse",
        """
with open(OUT / "huge.bin", "wb") as fh:
    fh.truncate(2 * 1024**3)
result(output="dropped 2 GiB")
""",
        limits={"file_size": "4Gi"},
    )
    repo.run_all()
    assert repo.task_row("sparse").state == "FAILED"
    assert "huge.bin" in repo.run_error("sparse")
    stored = sum(p.stat().st_blocks * 512 for p in (repo.mc_dir / "drops").rglob("*"))
    assert stored < 1024**2


def test_a_hundred_thousand_files_fail_the_run_at_the_count_cap(repo: HostileRepo) -> None:
    repo.hostile(
        "spray",
        """
for i in range(100_000):
    (OUT / f"f{i:06d}").write_bytes(b"x")
result(output="sprayed")
""",
    )
    repo.run_all()
    assert repo.task_row("spray").state == "FAILED"
    assert "1000" in repo.run_error("spray").replace(",", "")
    with repo.state() as state:
        assert state.reader.drops("spray") == []


@pytest.fixture
def listener() -> Iterator[tuple[int, list[str]]]:
    """A TCP server on 127.0.0.1 that records every connection it accepts."""
    sock = socket.create_server(("127.0.0.1", 0))
    sock.settimeout(0.2)
    accepted: list[str] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, peer = sock.accept()
            except TimeoutError:
                continue
            accepted.append(str(peer))
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield sock.getsockname()[1], accepted
    stop.set()
    thread.join(timeout=5)
    sock.close()


CONNECT = """
import socket
def connect():
    with socket.create_connection(("127.0.0.1", {port}), timeout=2):
        return "connected"
result(output=attempt("connect", connect))
"""


def test_the_network_is_closed_unless_the_agent_declares_it(
    repo: HostileRepo, listener: tuple[int, list[str]]
) -> None:
    port, accepted = listener
    repo.hostile("caller", CONNECT.format(port=port))
    repo.hostile("declared", CONNECT.format(port=port), network="host")
    repo.run_all()
    assert repo.output("caller").startswith("connect: refused"), repo.output("caller")
    assert repo.output("declared") == "connect: 'connected'"
    wait_until(lambda: len(accepted) == 1, 5, "the declared agent's connection")
    assert len(accepted) == 1  # the declared one only


def test_an_agent_cannot_write_into_the_repos_working_tree(repo: HostileRepo) -> None:
    repo.hostile(
        "scribbler",
        """
tries = [
    attempt("task", lambda: (REPO / "tasks" / "evil.yaml").write_text("kind: Task\\n")),
    attempt("tree", lambda: (pathlib.Path(os.environ["MC_REPO"]) / "evil.txt").write_text("x")),
]
result(output=tries)
""",
    )
    repo.commit("hostile agents")
    before = tree_digest(repo.root / "tasks")
    repo.mc("apply", "--auto-approve")
    assert tree_digest(repo.root / "tasks") == before
    assert not (repo.root / "evil.txt").exists()
    assert repo.git("status", "--porcelain") == ""
    tries = repo.output("scribbler")
    assert tries[1].startswith("tree: refused"), tries  # the applied tree is read-only


def test_under_serve_an_agent_sees_neither_mcs_secrets_nor_the_network(
    repo: HostileRepo, listener: tuple[int, list[str]]
) -> None:
    port, accepted = listener
    repo.hostile(
        "serve-snoop",
        CONNECT.format(port=port).replace(
            'result(output=attempt("connect", connect))',
            'env1 = pathlib.Path("/proc/1/environ").read_bytes().decode(errors="replace")\n'
            'result(output=[attempt("connect", connect), env1])',
        ),
    )
    head = repo.commit("hostile agents")
    os.environ["MC_TEST_SECRET"] = MARKER  # serve inherits the test's environment
    try:
        with served(repo.root) as serve:
            serve.wait_reconciled(head)
            task = wait_until(
                lambda: (t := serve.get("/api/tasks/serve-snoop")) and t["state"] == "DONE" and t,
                60,
                "the agent to finish under serve",
            )
    finally:
        os.environ.pop("MC_TEST_SECRET", None)
    connect, env1 = task["output"]
    assert connect.startswith("connect: refused"), connect
    assert MARKER not in env1
    assert accepted == []


def test_sandbox_none_runs_unconfined_and_says_so(repo: HostileRepo) -> None:
    repo.hostile(
        "trusted",
        """
result(output=(REPO / ".git").is_dir())
""",
        sandbox="none",
    )
    repo.commit("an unconfined agent")
    plan = repo.mc("plan")
    assert "sandbox" in plan.stdout.lower(), plan.stdout
    repo.mc("apply", "--auto-approve")
    assert repo.output("trusted") is True  # it can see the repo's .git, as the opt-out says
    status = repo.mc("status")
    assert "trusted" in status.stdout and "sandbox" in status.stdout.lower(), status.stdout


def test_the_outcome_names_the_fix_when_bwrap_is_missing(repo: HostileRepo, tmp_path: Path) -> None:
    repo.hostile("plain", "result(output='ran')\n")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("git", "python3", "sh"):
        found = subprocess.run(["which", tool], capture_output=True, text=True).stdout.strip()
        (bin_dir / tool).symlink_to(found)
    repo.commit("one agent")
    proc = repo.mc("apply", "--auto-approve", env={"PATH": str(bin_dir)})
    assert proc.returncode == 0, proc.stderr
    assert repo.task_row("plain").state == "FAILED"
    error = repo.run_error("plain")
    assert "bubblewrap" in error and "sandbox: none" in error, error
    assert "\n" not in error
