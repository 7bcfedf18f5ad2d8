"""One meaning of "attempt" on every surface (issue 11, fault 5).

An attempt is one run of a task's agent, numbered like its workspace `.mc/work/<task>/<n>`;
rework rounds, retries and abandoned runs all count. A workflow whose verifier sends its step
back twice is applied by the real `mc apply`; then `mc runs`, `mc run-status`, the JSON API
and the rendered pages must all say the verified step had three attempts. The retry budget's
counter (reset by each send-back) is shown under its own name.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dash_harness import Mission, make_app
from helpers.agents import PY, program, with_interpreter
from helpers.git import git, isolated_environ
from helpers.mc import WIDE, mc_json, run_mc
from helpers.yaml_docs import doc

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

pytestmark = pytest.mark.timeout(120)

RUN = "login"
IMPLEMENT = f"{RUN}.implement"
VERIFY = f"{RUN}.verify"
SENT_BACK = 2  # the verifier rejects the first two rounds: the verified step runs 3 times

CODER = """
result(status="done", output="implemented (round %d)" % TASK["workflow"]["rework"])
"""
CHECKER = f"""
if TASK["workflow"]["rework"] < {SENT_BACK}:
    result(status="retry", error="add tests please")
else:
    result(status="done", output="looks good")
"""


class Cli:
    """The real `mc` on one mission repo, in an isolated environment."""

    def __init__(self, root: Path) -> None:
        self.root, self.env = root, {**isolated_environ(root.parent), **WIDE}

    def text(self, *args: str) -> str:
        proc = run_mc("-C", str(self.root), *args, env=self.env)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return proc.stdout

    def json(self, *args: str) -> Any:
        return mc_json("-C", str(self.root), *args, env=self.env)


def _write(root: Path, rel: str, text: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _agent(root: Path, name: str, code: str) -> None:
    _write(root, f"agents/{name}.py", program(code))
    spec = with_interpreter({"command": [PY, f"{{repo}}/agents/{name}.py"], "timeout": "20s"})
    _write(root, f"agents/{name}.yaml", doc("Agent", name, spec))


@pytest.fixture(scope="module")
def cli(tmp_path_factory: pytest.TempPathFactory) -> Cli:
    """A workflow run whose verifier sent `implement` back twice, applied by `mc apply`."""
    root = tmp_path_factory.mktemp("attempts") / "mission"
    root.mkdir()
    git(root, "init", "-q")
    _write(root, "mission.yaml", doc("Mission", "attempt-counts", {}))
    _agent(root, "coder", CODER)
    _agent(root, "checker", CHECKER)
    steps = [
        {"id": "implement", "agent": "coder", "prompt": "build it"},
        {
            "id": "verify",
            "agent": "checker",
            "depends_on": ["implement"],
            "verifies": "implement",
            "max_rework": SENT_BACK,
        },
    ]
    _write(root, "workflows/dev.yaml", doc("Workflow", "dev", {"steps": steps}))
    _write(root, f"runs/{RUN}.yaml", doc("WorkflowRun", RUN, {"workflow": "dev"}))
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "a workflow with a strict verifier")
    cli = Cli(root)
    cli.text("apply", "--auto-approve")
    return cli


@pytest.fixture(scope="module")
def client(cli: Cli) -> Iterator[TestClient]:
    """The dashboard and JSON API over the state `mc apply` left, opened read-only."""
    with TestClient(make_app(Mission(cli.root))) as c:
        yield c


def test_the_run_went_through_two_rework_rounds(cli: Cli) -> None:
    status = cli.json("run-status", RUN)
    assert status["status"] == "SUCCEEDED"
    rework = {s["id"]: s["rework"] for s in status["steps"]}
    assert rework["verify"] == SENT_BACK


def test_mc_runs_numbers_every_attempt_like_its_workspace(cli: Cli) -> None:
    runs = cli.json("runs", IMPLEMENT)
    assert [r["attempt"] for r in runs] == [3, 2, 1]  # newest first
    for r in runs:
        assert Path(r["workspace"]).name == str(r["attempt"])
        assert Path(r["workspace"]).parent.name == IMPLEMENT
    header = cli.text("runs", IMPLEMENT).splitlines()[1]
    assert "attempt" in header and "#" not in header


def test_cli_api_and_pages_agree_on_the_attempts(cli: Cli, client: TestClient) -> None:
    for task in (IMPLEMENT, VERIFY):
        shown_by_runs = len(cli.json("runs", task))
        assert shown_by_runs == SENT_BACK + 1

        steps = {s["task"]: s for s in cli.json("run-status", RUN)["steps"]}
        assert steps[task]["attempts"] == shown_by_runs

        detail = client.get(f"/api/tasks/{task}").json()
        assert detail["attempts"] == shown_by_runs
        assert [a["run"]["attempt"] for a in detail["runs"]] == [3, 2, 1]

        listed = client.get("/api/tasks", params={"run": RUN}).json()["tasks"]
        assert {t["name"]: t["attempts"] for t in listed}[task] == shown_by_runs

        run_steps = {s["task"]: s for s in client.get(f"/api/runs/{RUN}").json()["steps"]}
        assert run_steps[task]["attempts"] == shown_by_runs

        page = client.get(f"/tasks/{task}").text
        facts = re.search(r"<dt>attempts</dt><dd>(\d+)", page)
        assert facts is not None and int(facts.group(1)) == shown_by_runs
        cards = [int(n) for n in re.findall(r"<h3>Attempt (\d+) ", page)]
        assert cards == [3, 2, 1]


def test_the_retry_budget_is_a_separate_count(cli: Cli, client: TestClient) -> None:
    """A send-back starts the verified step's retry budget afresh: one try used of three."""
    detail = client.get(f"/api/tasks/{IMPLEMENT}").json()
    assert (detail["retry_budget_used"], detail["retry_budget"]) == (1, 3)
    page = client.get(f"/tasks/{IMPLEMENT}").text
    assert re.search(r"<dt>retry budget</dt><dd>1 of 3 tries used", page)
