"""The workflow commands through the installed `mc` script: `mc run`, `mc workflows`,
`mc runs -w`, `mc run-status` (text and --json)."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from wf_harness import WfRepo, flat, git, step

pytestmark = pytest.mark.timeout(60)

DEV_INPUTS = {
    "goal": {"required": True, "description": "What to build"},
    "size": {"default": "small", "enum": ["small", "big"]},
    "count": {"default": 1},
    "dry": {"default": False},
}


def dev_workflow(repo: WfRepo) -> None:
    repo.workflow(
        "dev",
        [
            step("plan", prompt="Plan {{ inputs.goal }} x{{ inputs.count }}"),
            step("implement", depends_on=["plan"], prompt="{{ steps.plan.output }}"),
            step("docs", depends_on=["plan"], when="inputs.size == 'big'"),
            step(
                "verify",
                agent="verifier",
                depends_on=["implement"],
                verifies="implement",
                prompt="REJECT=1",
            ),
        ],
        inputs=DEV_INPUTS,
    )


def test_mc_run_writes_the_run_file_and_commits_only_it(repo: WfRepo) -> None:
    dev_workflow(repo)
    before = repo.commit()
    repo.write("notes.txt", "an unrelated edit that stays uncommitted\n")

    proc = repo.mc(
        "run", "dev", "-i", "goal=Add login", "-i", "count=3", "-i", "dry=true", "--name", "login"
    )

    assert proc.returncode == 0, proc.stderr
    assert "Committed runs/login.yaml" in proc.stdout
    assert yaml.safe_load((repo.root / "runs/login.yaml").read_text()) == {
        "apiVersion": "mc/v1",
        "kind": "WorkflowRun",
        "metadata": {"name": "login"},
        "spec": {"workflow": "dev", "inputs": {"goal": "Add login", "count": 3, "dry": True}},
    }
    assert git(repo.root, "rev-parse", "HEAD~1") == before
    assert git(repo.root, "log", "-1", "--format=%s") == "Run workflow dev as login (mc run)"
    assert git(repo.root, "show", "--name-only", "--format=", "HEAD") == "runs/login.yaml"
    assert git(repo.root, "status", "--porcelain") == "?? notes.txt"

    repo.apply()

    assert repo.task_json("login", "plan")["prompt"] == "Plan Add login x3"
    assert repo.run_row("login").status == "SUCCEEDED"


def test_mc_run_no_commit_only_writes_the_file(repo: WfRepo) -> None:
    dev_workflow(repo)
    head = repo.commit()

    proc = repo.mc("run", "dev", "-i", "goal=x", "--name", "later", "--no-commit")

    assert proc.returncode == 0, proc.stderr
    assert "Wrote runs/later.yaml" in proc.stdout
    assert (repo.root / "runs/later.yaml").is_file()
    assert git(repo.root, "rev-parse", "HEAD") == head
    assert git(repo.root, "status", "--porcelain") == "?? runs/"


@pytest.mark.parametrize(
    ("args", "where", "message"),
    [
        (["dev", "-i", "size=big"], "runs/bad.yaml:7:3", "missing required input 'goal'"),
        (
            ["dev", "-i", "goal=x", "-i", "size=huge"],
            "runs/bad.yaml:9:5",
            "input 'size' is 'huge'; expected one of small, big",
        ),
        (
            ["dev", "-i", "goal=x", "-i", "colour=red"],
            "runs/bad.yaml:9:5",
            "unknown input of workflow 'dev': 'colour'",
        ),
        (["deev", "-i", "goal=x"], "runs/bad.yaml:6:3", "unknown workflow 'deev'"),
    ],
    ids=["missing", "enum", "unknown-input", "unknown-workflow"],
)
def test_mc_run_with_bad_inputs_fails_with_file_and_line_and_leaves_nothing(
    repo: WfRepo, args: list[str], where: str, message: str
) -> None:
    dev_workflow(repo)
    head = repo.commit()

    proc = repo.mc("run", *args, "--name", "bad")

    assert proc.returncode == 1
    [line] = proc.stderr.strip().splitlines()
    assert line.startswith(f"error: {where}: {message}"), line
    assert not (repo.root / "runs/bad.yaml").exists()
    assert git(repo.root, "rev-parse", "HEAD") == head
    assert "runs/bad.yaml" not in git(repo.root, "status", "--porcelain", "-uall")


def test_mc_run_refuses_a_bad_name_and_an_existing_run(repo: WfRepo) -> None:
    dev_workflow(repo)
    repo.run("taken", "dev", goal="x")
    repo.commit()

    bad = repo.mc("run", "dev", "-i", "goal=x", "--name", "Bad_Name")
    taken = repo.mc("run", "dev", "-i", "goal=y", "--name", "taken")

    assert bad.returncode == 1 and "invalid run name 'Bad_Name'" in bad.stderr
    assert taken.returncode == 1
    assert "runs/taken.yaml already exists; choose another --name" in taken.stderr
    assert yaml.safe_load((repo.root / "runs/taken.yaml").read_text())["spec"]["inputs"] == {
        "goal": "x"
    }


def test_the_workflow_views_show_runs_steps_and_stages(repo: WfRepo) -> None:
    dev_workflow(repo)
    repo.run("login", "dev", goal="Add login")
    repo.commit()
    repo.apply()
    digest = repo.run_row("login").workflow_digest

    text = repo.mc("run-status", "login")
    body = repo.mc_json("run-status", "login")
    runs = repo.mc_json("runs", "-w")
    listing = repo.mc("workflows")
    workflows = repo.mc_json("workflows")

    assert text.returncode == 0, text.stderr
    lines = [flat(line) for line in text.stdout.splitlines() if line.strip()]
    assert lines[0] == "Workflow run login of dev: SUCCEEDED"
    assert lines[1] == (
        f"inputs: count=1, dry=False, goal=Add login, size=small pinned {digest[:19]}"
    )
    assert lines[2:] == [
        "stage 1 ✔ plan DONE",
        "stage 2 ✔ implement DONE ◀─ plan",
        "✔ docs DONE ◀─ plan skipped: `when: inputs.size == 'big'` is false",
        "stage 3 ✔ verify DONE ◀─ implement (rework 1)",
    ]

    assert set(body) == {
        "name",
        "workflow",
        "status",
        "inputs",
        "outputs",
        "workflow_digest",
        "steps",
    }
    assert (body["name"], body["workflow"], body["status"]) == ("login", "dev", "SUCCEEDED")
    assert body["workflow_digest"] == digest
    assert body["outputs"] == {  # the final steps': those nothing depends on
        "docs": {"output": None, "outputs": {}},
        "verify": {"output": "looks good", "outputs": {}},
    }
    steps: dict[str, dict[str, Any]] = {s["id"]: s for s in body["steps"]}
    assert list(steps) == ["plan", "implement", "docs", "verify"]
    assert steps["implement"] == {
        "id": "implement",
        "task": "login.implement",
        "state": "DONE",
        "reason": "done",
        "attempts": 2,  # runs of its agent: the first, and one after the verifier sent it back
        "rework": 0,
        "depends_on": ["plan"],
        "agent": "worker",
        "output": "Plan Add login x1",
    }
    assert (steps["verify"]["rework"], steps["docs"]["agent"]) == (1, None)

    [run] = runs
    assert set(run) == {
        "name",
        "workflow",
        "status",
        "inputs",
        "outputs",
        "workflow_digest",
        "created_at",
    }
    assert (run["name"], run["workflow"], run["status"]) == ("login", "dev", "SUCCEEDED")
    assert run["inputs"] == {"goal": "Add login", "size": "small", "count": 1, "dry": False}
    assert run["workflow_digest"] == digest

    assert listing.returncode == 0, listing.stderr
    row = next(flat(line) for line in listing.stdout.splitlines() if " dev " in line)
    assert "plan → implement → docs → verify" in row
    assert "count, dry, goal*, size" in row and row.rstrip("│ ").endswith("1")
    [wf] = workflows
    assert (wf["name"], wf["runs"]) == ("dev", 1)
    assert [s["id"] for s in wf["spec"]["steps"]] == ["plan", "implement", "docs", "verify"]


def test_run_status_of_an_unknown_run_says_so(repo: WfRepo) -> None:
    dev_workflow(repo)
    repo.commit()
    repo.apply()

    proc = repo.mc("run-status", "nope")

    assert proc.returncode == 1
    assert "no workflow run 'nope' has been applied (see `mc runs -w`)" in proc.stderr
