"""Fault 1, serve side: an exception inside one reconcile is recorded as `reconcile.error` and
`mc serve` carries on — healthy, and applying the next commit.

The fault is real, not injected: `.mc/cache` is made a plain file, so saving the parse cache
for a commit with a new file fails with FileExistsError (an OSError, not a spec error) inside
the reconcile of that commit; putting the directory back lets the next commit through.
"""

from __future__ import annotations

import json
import shutil
from typing import Any

from helpers.serve import Served, served
from helpers.starter import GitRepo, mc, task_yaml
from helpers.waiting import wait_until


def events(repo: GitRepo, kind: str) -> list[dict[str, Any]]:
    proc = mc("events", "--json", "--limit", "1000", cwd=repo.root)  # through serve's API
    assert proc.returncode == 0, proc.stderr
    return [e for e in json.loads(proc.stdout) if e["kind"] == kind]


def test_an_exception_in_one_reconcile_is_recorded_and_serve_carries_on(
    mission_repo: GitRepo,
) -> None:
    cache = mission_repo.root / ".mc" / "cache"
    with served(mission_repo.root) as serve:
        serve.wait_reconciled(mission_repo.head())
        shutil.rmtree(cache)
        cache.write_text("not a directory\n")
        mission_repo.write("tasks/second.yaml", task_yaml("second"))
        broken = mission_repo.commit("a commit whose reconcile fails")

        error = _wait_error(serve, mission_repo, broken)
        assert error["data"]["stage"] == "reconcile"
        assert error["data"]["reason"].startswith("FileExistsError"), error
        assert serve.healthy()
        facts = serve.facts()
        assert facts["last_error_commit"] == broken and "FileExistsError" in facts["last_error"]

        cache.unlink()
        mission_repo.write("tasks/third.yaml", task_yaml("third"))
        fixed = mission_repo.commit("the next commit")
        facts = serve.wait_reconciled(fixed)
        assert facts["last_error"] is None
        created = {e["subject"] for e in events(mission_repo, "resource.created")}
        assert {"Task/second", "Task/third"} <= created
        assert len(events(mission_repo, "reconcile.error")) == 1  # recorded once, not per retry
        assert serve.healthy()


def _wait_error(serve: Served, repo: GitRepo, commit: str) -> dict[str, Any]:
    def recorded() -> dict[str, Any] | None:
        assert serve.proc.poll() is None, f"mc serve died: {serve.output()}"
        found = [e for e in events(repo, "reconcile.error") if e["commit"] == commit]
        return found[0] if found else None

    error: dict[str, Any] = wait_until(recorded, 30.0, "a reconcile.error event for the commit")
    return error
