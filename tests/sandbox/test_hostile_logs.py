"""Hostile agents against mc's reads of their logs: an agent owns its workspace, so it can swap
stdout.log or stderr.log (which mc reopens after the run, and `mc logs` and the dashboard show)
for a symlink to any host file, a FIFO or /dev/zero. Each agent here runs through the real
`mc apply`, sandboxed; mc must neither read through the link, block on the FIFO nor read without
end, and the run says why its log was not used.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from helpers.mission_repo import GitRepo

from api.app import create_app
from reconciler.engine.launch import Paths
from state.dashboard import DashboardReader
from state.store import State, StateReader

pytestmark = pytest.mark.timeout(120)

MARKER = "mc-hostile-log-marker-5e21b7"  # a secret in mc's environment no agent was given
NOT_REGULAR = "is not a regular file (symlinks are not followed)"

PRELUDE = """\
import json, os, sys, pathlib
WS = pathlib.Path(os.environ["MC_WORKSPACE"])

def swap(name, make):
    os.unlink(WS / name)
    make(str(WS / name))
"""


class LogRepo(GitRepo):
    def hostile(self, name: str, code: str, **agent: Any) -> None:
        self.write(f"agents/{name}.py", PRELUDE + code)
        agent.setdefault("command", ["python3", f"{{repo}}/agents/{name}.py"])
        self.agent(name, **agent)
        self.task(name, agent=name)

    def apply(self) -> float:
        """`mc apply` (which must return, and succeed as a command); its wall time."""
        self.commit("hostile agents")
        started = time.monotonic()
        proc = self.mc("apply", "--auto-approve")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return time.monotonic() - started

    def run_error(self, task: str) -> str:
        return str(self.runs(task)[-1].error or "")

    def task_page(self, task: str) -> str:
        """The dashboard's task page (attempts with their log tails), served in this process."""

        @contextmanager
        def readers() -> Iterator[tuple[StateReader, DashboardReader]]:
            with State.open(self.state_file, write=False) as state:
                yield state.reader, DashboardReader(state.db)

        app = create_app(readers, paths=Paths(self.root, self.mc_dir))
        with TestClient(app) as client:
            page = client.get(f"/tasks/{task}")
        assert page.status_code == 200, page.text
        return str(page.text)


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> LogRepo:
    # In mc's environment (the CLI inherits it) and in this process's (the dashboard's).
    monkeypatch.setenv("MC_TEST_SECRET", MARKER)
    repo = LogRepo(tmp_path / "mission")
    repo.init()
    repo.write_doc("mission.yaml", "Mission", "hostile-logs", {})
    return repo


def assert_marker_nowhere(repo: LogRepo, *texts: str) -> None:
    for text in texts:
        assert MARKER not in text
    for path in repo.mc_dir.rglob("*"):
        if path.is_file() and not path.is_symlink():
            assert MARKER.encode() not in path.read_bytes(), f"{MARKER} leaked into {path}"


def test_a_stdout_log_swapped_for_proc_self_environ_is_not_read(repo: LogRepo) -> None:
    repo.hostile(
        "environ",
        """
sys.stdout.write("x" * 20000)
sys.stdout.flush()
swap("stdout.log", lambda p: os.symlink("/proc/self/environ", p))
""",
        protocol="stdout",
    )
    repo.apply()
    row = repo.task_row("environ")
    assert row.state == "FAILED"
    assert row.output is None
    assert f"stdout.log {NOT_REGULAR}" in repo.run_error("environ")
    logs = repo.mc("logs", "environ")
    assert logs.returncode == 0, logs.stderr
    assert "not shown" in logs.stderr
    page = repo.task_page("environ")
    assert f"stdout: not shown, stdout.log {NOT_REGULAR}" in page
    assert_marker_nowhere(repo, logs.stdout, logs.stderr, page, str(row.output))


def test_a_stderr_log_swapped_for_dev_zero_fails_the_run_with_a_reason(repo: LogRepo) -> None:
    repo.hostile(
        "zero",
        """
sys.stderr.write("about to swap\\n")
sys.stderr.flush()
swap("stderr.log", lambda p: os.symlink("/dev/zero", p))
sys.exit(3)
""",
    )
    repo.apply()
    run = repo.runs("zero")[-1]
    assert run.status == "retry"  # a non-zero exit, tried once (max_attempts: 1)
    assert repo.task_row("zero").state == "FAILED"
    assert repo.run_error("zero") == f"exited with code 3: stderr.log {NOT_REGULAR}"
    logs = repo.mc("logs", "zero", "--stream", "stderr")
    assert logs.returncode == 0, logs.stderr
    assert logs.stdout == ""
    assert "not shown" in logs.stderr


def test_a_stderr_log_swapped_for_a_fifo_does_not_block_mc(repo: LogRepo) -> None:
    repo.hostile(
        "fifo",
        """
swap("stderr.log", os.mkfifo)
sys.exit(4)
""",
    )
    took = repo.apply()
    assert took < 60
    assert repo.task_row("fifo").state == "FAILED"
    assert repo.run_error("fifo") == f"exited with code 4: stderr.log {NOT_REGULAR}"
    logs = repo.mc("logs", "fifo")
    assert logs.returncode == 0, logs.stderr
    assert "stderr.log is not a regular file" in logs.stderr
    page = repo.task_page("fifo")
    assert f"stderr: not shown, stderr.log {NOT_REGULAR}" in page


def test_mc_logs_and_the_dashboard_do_not_show_a_log_linked_to_another_attempt(
    repo: LogRepo,
) -> None:
    repo.hostile(
        "first",
        """
print("private output of the first task")
print("first:" + "secret-of-first", flush=True)
""",
        protocol="stdout",
    )
    repo.hostile(
        "second",
        """
print("honest output", flush=True)
first = WS.parents[1] / "first" / "1" / "stdout.log"
swap("stdout.log", lambda p: os.symlink(str(first), p))
""",
        protocol="stdout",
    )
    repo.apply()
    assert "secret-of-first" in repo.mc("logs", "first").stdout  # its own log is shown
    logs = repo.mc("logs", "second")
    assert logs.returncode == 0, logs.stderr
    assert "secret-of-first" not in logs.stdout
    assert "not shown" in logs.stderr
    page = repo.task_page("second")
    assert "secret-of-first" not in page
    assert f"stdout: not shown, stdout.log {NOT_REGULAR}" in page
    assert "secret-of-first" not in str(repo.task_row("second").output)
