"""The loop survives its environment (issue 14, item 2): a disk that fills up while `mc serve`
ingests a result fails that run, or pauses the loop with the real error, instead of stopping
serve; once there is space again the work resumes and every run is recorded once.

The disk is real: a 1 MiB tmpfs mounted as `.mc/drops` (the drop store), or a small tmpfs
mounted as `.mc` itself (the state file, its WAL and the workspaces), filled to the last byte
by a file the test removes to give the space back. Mounting needs root; without it the tests
skip."""

from __future__ import annotations

import json
import os
import subprocess
import urllib.error
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers.exec_repo import ExecRepo
from helpers.serve import Served, served
from helpers.waiting import wait_until

pytestmark = pytest.mark.timeout(180)

NO_SPACE = "No space left on device"
RETRY = {"max_attempts": 50, "initial_interval": "100ms", "max_interval": "500ms"}


@pytest.fixture
def tmpfs_at() -> Iterator[Any]:
    """mount(path, size): a fresh tmpfs at `path`; each is unmounted afterwards."""
    mounted: list[Path] = []

    def mount(path: Path, size: str) -> Path:
        if os.geteuid() != 0:
            pytest.skip("mounting a tmpfs needs root")
        path.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
        mounted.append(path)
        return path

    yield mount
    for path in reversed(mounted):
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def fill(directory: Path) -> Path:
    """Write a file into `directory` until its filesystem has no byte left; the file."""
    filler = directory / "filler"
    with filler.open("wb") as out:
        chunk = b"\0" * 65536
        try:
            while True:
                out.write(chunk)
                out.flush()
        except OSError as exc:
            assert exc.errno == 28, exc  # ENOSPC
    for size in (4096, 512, 1):  # the last partial blocks too
        try:
            with filler.open("ab") as out:
                while True:
                    out.write(b"\0" * size)
                    out.flush()
        except OSError:
            pass
    return filler


def task_view(serve: Served, name: str) -> dict[str, Any]:
    """The task as /api/tasks/NAME shows it ({} until the loop has applied it)."""
    try:
        found: dict[str, Any] = serve.get(f"/api/tasks/{name}")
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return {}
        raise
    return found


def wait_state(serve: Served, name: str, state: str, within: float = 60.0) -> dict[str, Any]:
    def reached() -> dict[str, Any] | None:
        assert serve.proc.poll() is None, f"mc serve exited: {serve.output()}"
        view = task_view(serve, name)
        return view if view.get("state") == state else None

    found: dict[str, Any] = wait_until(reached, within, f"task {name} to be {state}")
    return found


def test_a_full_drop_store_fails_the_run_and_the_next_one_stores_its_drop(
    tmp_path: Path, tmpfs_at: Any
) -> None:
    repo = ExecRepo(tmp_path / "mission")
    store = tmpfs_at(repo.mc_dir / "drops", "1m")
    filler = fill(store)
    repo.agent("writer", '(OUT / "report.md").write_text("# Report\\n")\nresult(status="done")\n')
    repo.task("report", agent="writer", retry=RETRY)
    repo.commit("a task with a drop")
    with served(repo.root) as serve:

        def refused() -> bool:
            assert serve.proc.poll() is None, f"mc serve exited: {serve.output()}"
            return NO_SPACE in json.dumps(task_view(serve, "report"))

        wait_until(refused, 60, "a run to fail on the full drop store")
        assert serve.healthy()
        filler.unlink()
        wait_state(serve, "report", "DONE")
        assert serve.healthy()
    runs = repo.runs("report")
    assert [r.status for r in runs][-1] == "done"
    failed = [r for r in runs if r.status != "done"]
    assert failed and all(r.status == "retry" and NO_SPACE in str(r.error) for r in failed)
    with repo.state() as state:
        assert [d.path for d in state.reader.drops("report")] == ["report.md"]


def test_a_full_state_disk_pauses_the_loop_and_the_run_is_recorded_once_space_returns(
    tmp_path: Path, tmpfs_at: Any
) -> None:
    repo = ExecRepo(tmp_path / "mission")
    tmpfs_at(repo.mc_dir, "32m")
    ended = repo.scratch / "end"
    # The agent writes its result, then ends when the test says so: after the disk is full.
    repo.agent(
        "waiter",
        'result(status="done", output="finished")\n'
        f'while not Path("{ended}").exists():\n    time.sleep(0.05)\n',
    )
    repo.agent("after", 'result(status="done", output=str(TASK["upstream"]))\n')
    repo.task("first", agent="waiter", retry=RETRY)
    repo.task("second", agent="after", depends_on=["first"], retry=RETRY)
    repo.commit("two tasks")
    with served(repo.root) as serve:
        wait_state(serve, "first", "IN_PROGRESS")
        wait_until(
            lambda: any(repo.mc_dir.glob("work/first/*/result.json")), 30, "the result written"
        )
        filler = fill(repo.mc_dir)
        ended.touch()

        def paused() -> str | None:
            assert serve.proc.poll() is None, f"mc serve exited: {serve.output()}"
            error = serve.facts().get("last_error") or ""
            return error if NO_SPACE in error else None

        error = wait_until(paused, 60, "the loop to report the full disk")
        assert "tick failed" in error  # the real error, not a consequence of it
        assert serve.healthy()

        filler.unlink()
        wait_state(serve, "second", "DONE")
        assert task_view(serve, "first")["state"] == "DONE"
        assert serve.healthy()
    runs = repo.runs("first")
    assert [(r.state, r.status) for r in runs] == [("ENDED", "done")]  # recorded once
    assert repo.task_row("first").output == "finished"
