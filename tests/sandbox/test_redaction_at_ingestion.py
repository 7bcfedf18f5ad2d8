"""Redaction at ingestion (issue 14, item 4): a secret an agent was given (`env: {X: {from_env:
Y}}`) and echoes back in result.json — output, outputs, memory, error — or in a text drop under
out/ is stored as [redacted]: the state file's bytes, `/api/tasks/...`, the dashboard page, the
drop store and the downstream task's task.json never hold it. Through the real `mc apply`, with
real sandboxed agents."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from helpers.exec_repo import ExecRepo

from api.app import create_app
from reconciler.engine.launch import Paths
from state.dashboard import DashboardReader
from state.store import State, StateReader

pytestmark = pytest.mark.timeout(120)

TOKEN = "hunt-secret-7f3a9c2e51"
# Written next to the token: a control that the byte scans below would find a stored string.
VISIBLE = "visible-marker-4d1e8b"

ECHO = f"""
token = os.environ["API_TOKEN"]
(OUT / "notes.txt").write_text("the token is " + token + "\\n")
result(
    status="done",
    output="{VISIBLE} " + token,
    outputs={{"token": token, token: "as a key"}},
    memory={{"agent": {{"seen": "{VISIBLE} " + token}}}},
)
"""
FAIL = 'result(status="failed", error="could not use " + os.environ["API_TOKEN"])\n'
# The downstream agent keeps a copy of what it was handed, in the scratch dir the test reads.
READ = """
import shutil
scratch = Path(os.environ["SCRATCH"])
shutil.copy(os.environ["MC_TASK_JSON"], scratch / "downstream-task.json")
for drop in TASK["upstream"]["echo"]["drops"]:
    shutil.copy(drop["file"], scratch / ("drop-" + Path(drop["path"]).name))
result(status="done", output="read it")
"""


@pytest.fixture
def repo(tmp_path: Path) -> ExecRepo:
    repo = ExecRepo(tmp_path / "mission")
    secret_env = {"API_TOKEN": {"from_env": "HUNT_SECRET"}}
    repo.agent("echo", ECHO, env=secret_env)
    repo.agent("failing", FAIL, env=secret_env)
    repo.agent("reader", READ, env={"SCRATCH": str(repo.scratch)})
    repo.task("echo", agent="echo")
    repo.task("failing", agent="failing")
    repo.task("downstream", agent="reader", depends_on=["echo"])
    repo.commit("echo the secret")
    applied = repo.mc("apply", "--auto-approve", env={"HUNT_SECRET": TOKEN})
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert TOKEN not in applied.stdout + applied.stderr
    return repo


@contextmanager
def dashboard(repo: ExecRepo) -> Iterator[TestClient]:
    @contextmanager
    def readers() -> Iterator[tuple[StateReader, DashboardReader]]:
        with State.open(repo.state_file, write=False) as state:
            yield state.reader, DashboardReader(state.db)

    with TestClient(create_app(readers, paths=Paths(repo.root, repo.mc_dir))) as client:
        yield client


def test_a_secret_echoed_back_is_stored_redacted(repo: ExecRepo) -> None:
    echo = repo.task_row("echo")
    assert echo.state == "DONE", repo.runs("echo")
    assert echo.output == f"{VISIBLE} [redacted]"
    assert repo.runs("failing")[-1].error == "could not use [redacted]"
    assert repo.task_row("downstream").state == "DONE"
    with repo.state() as state:
        assert state.reader.memory("agent:echo")["agent:echo"] == {"seen": f"{VISIBLE} [redacted]"}

    stored = b"".join(p.read_bytes() for p in repo.mc_dir.glob("state.duckdb*") if p.is_file())
    assert VISIBLE.encode() in stored  # the scan sees stored strings...
    assert TOKEN.encode() not in stored  # ...and the token is not one of them

    drops = [p for p in (repo.mc_dir / "drops").rglob("*") if p.is_file()]
    assert [p.read_bytes() for p in drops] == [b"the token is [redacted]\n"]

    handed = (repo.scratch / "downstream-task.json").read_text()
    assert TOKEN not in handed and VISIBLE in handed
    upstream = json.loads(handed)["upstream"]["echo"]
    assert upstream["output"] == f"{VISIBLE} [redacted]"
    assert upstream["outputs"] == {"token": "[redacted]", "[redacted]": "as a key"}
    assert (repo.scratch / "drop-notes.txt").read_text() == "the token is [redacted]\n"

    with dashboard(repo) as client:
        for url in ("/api/tasks/echo", "/tasks/echo", "/api/tasks/failing", "/tasks/failing"):
            page = client.get(url)
            assert page.status_code == 200, url
            assert TOKEN not in page.text, url
        assert "[redacted]" in client.get("/api/tasks/echo").text
