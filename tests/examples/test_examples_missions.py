"""Every mission repo in examples/ is validated, planned and applied end to end by the real CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from examples_harness import (
    EXAMPLES,
    copy_example,
    flat,
    mc,
    mc_json,
    mission_dirs,
    runs_of,
    snapshot,
    tasks,
)

RESEARCH = EXAMPLES / "research-mission"


def test_the_examples_folder_has_mission_repos() -> None:
    assert RESEARCH in mission_dirs()
    assert set(CHECKS) <= {p.name for p in mission_dirs()}


def check_research_mission(root: Path) -> None:
    """The researcher, writer and reviewer did real work, and the reviewer sent it back once."""
    seen = snapshot(root)
    found = seen.tasks
    assert {name: t.state for name, t in found.items()} == {
        "research-topic": "DONE",
        "draft-post": "DONE",
        "review-post": "DONE",
    }

    # The researcher read the four documents and kept dated, named sentences.
    assert found["research-topic"].output.startswith("Extracted ")
    assert (found["research-topic"].outputs or {})["documents"][0] == "corpus/version-control.md"
    facts = seen.drops["research-topic"]["facts.md"]
    assert "- [F2] Walter Tichy released the Revision Control System (RCS)" in facts
    assert "coined the term GitOps" in facts
    assert "That change of habit" not in facts  # no number, no fact

    # The writer's draft is a content drop (as `mc drops` shows it), every sentence cited.
    (drop,) = mc_json("drops", "draft-post", cwd=root)
    assert (drop["path"], drop["media_type"]) == ("draft.md", "text/markdown")
    draft = Path(drop["file"]).read_text()
    assert draft.startswith("# From SCCS to GitOps")
    assert "at Purdue University in 1982 [1]." in draft
    assert "\n1. A short history of version control (corpus/version-control.md)\n" in draft

    # The reviewer sent it back once (a real retry), then approved it.
    review = runs_of(root, "review-post")
    assert [r["status"] for r in review] == ["retry", "done"]
    assert review[0]["error"].startswith("sent back: 0 blocking problems, 2 editorial notes")
    assert found["review-post"].output.startswith("Approved on the second read")
    assert "# First read" in seen.drops["review-post"]["review-notes.md"]
    assert "# Verdict: approved" in seen.drops["review-post"]["review.md"]
    assert seen.memory["task:review-post"]["reviewed_once"] is True

    # Agent memory: what each agent carries into its next run.
    assert "documents_read = 4" in mc("memory", "researcher", cwd=root)
    assert seen.memory["agent:writer"] == {"drafts_written": 1}
    assert seen.memory["agent:reviewer"] == {"reviews": 2}
    assert seen.runs == 4


def _no_check(root: Path) -> None:
    """Examples without checks of their own."""


CHECKS: dict[str, Callable[[Path], None]] = {"research-mission": check_research_mission}


@pytest.mark.parametrize("example", mission_dirs(), ids=lambda p: p.name)
def test_every_mission_example_validates_plans_and_applies(example: Path, tmp_path: Path) -> None:
    root = copy_example(example, tmp_path / example.name)
    assert "Valid." in mc("validate", cwd=root)
    plan = mc_json("plan", cwd=root)
    assert plan["actions"] and plan["summary"]["blocked"] == 0
    waiting = plan["summary"]["needs_approval"]

    applied = flat(mc("apply", "--auto-approve", cwd=root))
    assert f"{len(plan['actions']) - waiting} applied, {waiting} waiting for approval" in applied

    # Everything settled: nothing is left running once `mc apply` returns. What each
    # example should end with (all DONE, or some waiting for a person) is in CHECKS.
    states = {name: t.state for name, t in tasks(root).items()}
    assert not {"ASSIGNED", "IN_PROGRESS"} & set(states.values()), states
    counts: dict[str, int] = {}
    for state in states.values():
        counts[state] = counts.get(state, 0) + 1
    assert mc_json("status", cwd=root)["tasks"] == counts
    CHECKS.get(example.name, _no_check)(root)

    # Applying the same commit again runs nothing more.
    runs = snapshot(root).runs
    again = mc("apply", "--auto-approve", cwd=root)
    assert snapshot(root).runs == runs
    if not waiting:
        assert "No changes to apply." in again


# --- the reviewer on its own: a doctored draft is rejected on the second read -------------


def run_reviewer(
    tmp_path: Path, draft: str, facts: str, memory: dict[str, Any], attempt: int
) -> dict[str, Any]:
    ws = tmp_path / f"attempt-{attempt}"
    (ws / "out").mkdir(parents=True)
    files = {"draft.md": ws / "draft.md", "facts.md": ws / "facts.md"}
    files["draft.md"].write_text(draft)
    files["facts.md"].write_text(facts)
    task = {
        "title": "Review",
        "inputs": {"min_words": 10, "max_words": 700},
        "upstream": {
            name: {"drops": [{"path": name, "file": str(file)}]} for name, file in files.items()
        },
        "memory": memory,
    }
    (ws / "task.json").write_text(json.dumps(task))
    env = {
        **os.environ,
        "MC_TASK_JSON": str(ws / "task.json"),
        "MC_RESULT_JSON": str(ws / "result.json"),
        "MC_OUT_DIR": str(ws / "out"),
    }
    agent = RESEARCH / "agents" / "reviewer.py"
    proc = subprocess.run([sys.executable, str(agent)], env=env, capture_output=True, check=False)
    assert proc.returncode == 0, proc.stderr
    result: dict[str, Any] = json.loads((ws / "result.json").read_text())
    return result


FACTS = """# Facts: t

## [S1] Version control (corpus/vc.md)

- [F1] Walter Tichy released RCS at Purdue University in 1982.
- [F2] Linus Torvalds wrote Git in 2005.
"""
DRAFT = """# Title

Intro.

## Version control

Walter Tichy released RCS at Purdue University in 1982 [1]. Git was written by Junio in 1999 [1].

## Sources

1. Version control (corpus/vc.md)
"""


def test_reviewer_sends_a_draft_back_once_then_rejects_an_invented_claim(tmp_path: Path) -> None:
    first = run_reviewer(tmp_path, DRAFT, FACTS, {}, 1)
    assert first["status"] == "retry"
    assert "1 blocking problems" in first["error"]
    assert first["memory"]["task"]["reviewed_once"] is True

    memory = {"task": first["memory"]["task"], "agent": first["memory"]["agent"]}
    second = run_reviewer(tmp_path, DRAFT, FACTS, memory, 2)
    assert second["status"] == "failed"
    assert "'Git was written by Junio in 1999.' is not a fact of source [1]" in second["error"]
    assert second["memory"]["agent"] == {"reviews": 2}

    fixed = DRAFT.replace("Git was written by Junio in 1999", "Linus Torvalds wrote Git in 2005")
    third = run_reviewer(tmp_path, fixed, FACTS, memory, 3)
    assert third["status"] == "retry"  # a new draft gets its own first read
    fourth = run_reviewer(tmp_path, fixed, FACTS, {"task": third["memory"]["task"]}, 4)
    assert fourth["status"] == "done", fourth
    assert fourth["output"].startswith("Approved on the second read: ")
