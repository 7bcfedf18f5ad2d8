"""examples/workflows-mission end to end: the four workflows run by `mc apply` on the sample app.

One module-scoped apply drives every run in runs/ to the end; the tests then read what each
step did through the real CLI (run-status, events, runs, drops) and check the pull requests
by applying their diffs to a fresh copy of the sample app and running its code.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from workflow_harness import (
    RUNS,
    SAMPLE_APP,
    Mission,
    patched_app,
    python,
    run_agent,
    tree_digest,
)


def attempts(mission: Mission, task: str) -> list[dict[str, Any]]:
    """The task's agent runs, one per attempt (`mc runs --json`)."""
    return [r for r in mission.read("runs", "--limit", "500") if r["task"] == task]


@pytest.mark.parametrize("run", RUNS)
def test_every_run_succeeds_with_every_step_done(applied: Mission, run: str) -> None:
    status = applied.read("run-status", run)
    assert status["status"] == "SUCCEEDED"
    assert {s["id"]: s["state"] for s in status["steps"]} == {
        s["id"]: "DONE" for s in status["steps"]
    }


def test_the_runs_use_their_workflows_steps(applied: Mission) -> None:
    runs = {r["name"]: r["workflow"] for r in applied.read("runs", "--workflow-runs")}
    assert runs == {
        "add-word-count": "feature-dev",
        "fix-empty-average": "bug-fix",
        "audit-textstats": "security-audit",
        "review-textstats": "code-review",
    }
    steps = {run: [s["id"] for s in applied.read("run-status", run)["steps"]] for run in RUNS}
    assert steps == {
        "add-word-count": ["plan", "setup", "implement", "verify", "test", "pr", "review"],
        "fix-empty-average": ["triage", "investigate", "setup", "fix", "verify", "pr"],
        "audit-textstats": ["scan", "prioritize", "setup", "fix", "verify", "test", "pr"],
        "review-textstats": ["analyze", "security", "style", "approve"],
    }


# --- feature-dev --------------------------------------------------------------------------


def test_feature_dev_verify_sent_implement_back_exactly_once(applied: Mission) -> None:
    steps = {s["id"]: s for s in applied.read("run-status", "add-word-count")["steps"]}
    assert steps["verify"]["rework"] == 1

    reworks = [
        e for e in applied.read("events", "--limit", "1000") if e["kind"] == "workflow.rework"
    ]
    assert [e["subject"] for e in reworks] == ["Task/add-word-count.implement"]
    feedback = reworks[0]["data"]["feedback"]
    assert feedback.startswith("2 of 10 tests failed:")
    assert "1 != 0 : word_count('')" in feedback

    # The verifier's two reads: sent back, then passed; the developer's two attempts.
    verify = attempts(applied, "add-word-count.verify")
    assert sorted(r["status"] for r in verify) == ["done", "retry"]
    assert len(attempts(applied, "add-word-count.implement")) == 2
    assert "reworked after review" in steps["implement"]["output"]
    assert applied.outputs("add-word-count.implement")["reworked"] is True


def test_feature_dev_test_step_reports_passing_tests(applied: Mission) -> None:
    outputs = applied.outputs("add-word-count.test")
    assert outputs == {
        "tests_run": 10,
        "passed": 10,
        "failed": 0,
        "skipped": 0,
        "added": 4,
        "ok": True,
    }


def test_feature_dev_pr_adds_a_working_word_count(applied: Mission, tmp_path: Path) -> None:
    diff = applied.drop_text("add-word-count.pr", "pr.diff")
    assert "+def word_count(text):" in diff
    assert "+    return len(words(text))" in diff
    assert "+++ b/tests/test_word_count.py" in diff
    assert "TODO" not in diff

    app = patched_app(applied, "add-word-count", tmp_path / "app")
    check = python(
        app, "-c", "from textstats.core import word_count as w; print(w('a  b, c!'), w(''))"
    )
    assert check.stdout.split() == ["3", "0"], check.stderr
    suite = python(app, "-m", "unittest")
    assert suite.returncode == 0 and "Ran 10 tests" in suite.stderr, suite.stderr

    description = applied.drop_text("add-word-count.pr", "pr.md")
    assert description.startswith("# feat: add word_count\n")
    review = applied.read("run-status", "add-word-count")["outputs"]["review"]
    assert review["outputs"]["approved"] is True
    assert "# Review: approved" in applied.drop_text("add-word-count.review", "review.md")


# --- bug-fix ------------------------------------------------------------------------------


def test_bug_fix_reproduces_the_bug_and_its_pr_fixes_it(applied: Mission, tmp_path: Path) -> None:
    investigated = applied.outputs("fix-empty-average.investigate")
    assert investigated["exception"] == "ZeroDivisionError"
    assert (investigated["module"], investigated["line"]) == ("textstats/core.py", 22)

    diff = applied.drop_text("fix-empty-average.pr", "pr.diff")
    assert "+    if not found:\n+        return 0.0\n" in diff
    assert "+++ b/tests/test_regression_average_word_length.py" in diff

    call = "from textstats.core import average_word_length as a; print(a(''), a('ab abcd'))"
    before = python(SAMPLE_APP, "-c", call)
    assert "ZeroDivisionError" in before.stderr
    app = patched_app(applied, "fix-empty-average", tmp_path / "app")
    after = python(app, "-c", call)
    assert after.stdout.split() == ["0.0", "3.0"], after.stderr
    assert python(app, "-m", "unittest").returncode == 0


# --- security-audit -----------------------------------------------------------------------


def test_security_audit_finds_ranks_and_fixes_the_worst_smell(
    applied: Mission, tmp_path: Path
) -> None:
    scan = applied.outputs("audit-textstats.scan")
    assert scan["by_severity"] == {"critical": 1, "high": 1, "low": 1}
    ranked = applied.outputs("audit-textstats.prioritize")["ranked"]
    assert [(f["rule"], f["line"]) for f in ranked] == [
        ("eval-call", 9),
        ("shell-true", 14),
        ("weak-hash", 20),
    ]
    fix = applied.outputs("audit-textstats.fix")
    assert fix["fixed"]["rule"] == "eval-call"
    assert fix["remaining"] == [
        "shell-true at textstats/options.py:14",
        "weak-hash at textstats/options.py:20",
    ]
    assert applied.outputs("audit-textstats.test")["ok"] is True

    diff = applied.drop_text("audit-textstats.pr", "pr.diff")
    assert "-    return eval(text)\n+    return ast.literal_eval(text)\n" in diff
    assert "+import ast\n" in diff

    attack = "from textstats.options import load_options as l; l(\"__import__('os').getcwd()\")"
    assert python(SAMPLE_APP, "-c", attack).returncode == 0  # the original runs the code
    app = patched_app(applied, "audit-textstats", tmp_path / "app")
    refused = python(app, "-c", attack)
    assert refused.returncode != 0 and "ValueError" in refused.stderr
    assert python(app, "-m", "unittest").returncode == 0


# --- code-review --------------------------------------------------------------------------


def test_code_review_runs_security_and_style_in_parallel_and_requests_changes(
    applied: Mission,
) -> None:
    status = applied.read("run-status", "review-textstats")
    deps = {s["id"]: s["depends_on"] for s in status["steps"]}
    assert deps["security"] == deps["style"] == ["analyze"]
    (security,) = attempts(applied, "review-textstats.security")
    (style,) = attempts(applied, "review-textstats.style")
    assert security["started_at"] < style["ended_at"] and style["started_at"] < security["ended_at"]

    metrics = applied.outputs("review-textstats.analyze")
    assert (metrics["files"], metrics["functions"]) == (3, 7)
    verdict = status["outputs"]["approve"]["outputs"]
    assert verdict["verdict"] == "request-changes"
    assert [b.split(" at ")[0] for b in verdict["blocking"]] == [
        "critical eval-call",
        "high shell-true",
    ]
    assert "# Verdict: request-changes" in applied.drop_text(
        "review-textstats.approve", "review.md"
    )


# --- the mission as a whole ---------------------------------------------------------------


def test_runs_never_modify_the_sample_app(applied: Mission, sample_digest: str) -> None:
    assert tree_digest(SAMPLE_APP) == sample_digest  # examples/ itself
    assert tree_digest(applied.root / "sample-app") == sample_digest  # the mission checkout
    assert applied.git("status", "--porcelain", "--untracked-files=all") == ""
    assert not (applied.root / ".mc" / "wc").exists()  # copies travel as drops, not in .mc/
    for run in ("add-word-count", "audit-textstats", "fix-empty-average"):
        copied = [d["path"] for d in applied.read("drops", f"{run}.setup")]
        assert "wc/textstats/core.py" in copied, run


def test_applying_again_runs_nothing(applied: Mission) -> None:
    before = len(applied.read("runs", "--limit", "500"))
    assert "No changes to apply." in applied.mc("apply", "--auto-approve")
    assert len(applied.mc_json("runs", "--limit", "500")) == before == 26


def test_a_goal_without_a_recipe_blocks_the_run_at_plan(fresh: Mission) -> None:
    fresh.git("rm", "-q", "runs/*.yaml")
    fresh.git("commit", "-q", "-m", "no runs")
    fresh.mc("run", "feature-dev", "-i", "goal=Add a fizz_buzz function", "--name", "fizz")
    fresh.mc("apply", "--auto-approve")

    status = fresh.mc_json("run-status", "fizz")
    states = {s["id"]: s["state"] for s in status["steps"]}
    assert status["status"] == "BLOCKED"
    assert states["plan"] == "BLOCKED" and states["setup"] == "DONE"
    assert {states[s] for s in ("implement", "verify", "test", "pr", "review")} == {"INBOX"}
    plan = next(s for s in status["steps"] if s["id"] == "plan")
    assert "no recipe for the goal 'Add a fizz_buzz function'" in plan["reason"]


# --- the verifier on its own ----------------------------------------------------------------


def test_verifier_rejects_a_regression_test_that_passes_on_the_unfixed_code(
    tmp_path: Path,
) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(SAMPLE_APP, repo / "sample-app")
    copy = tmp_path / "fixed"  # the fix step's working copy, handed on as its wc/ drops
    shutil.copytree(SAMPLE_APP, copy)
    (copy / "tests" / "test_regression.py").write_text(
        "import unittest\n\nfrom textstats.core import average_word_length\n\n\n"
        "class T(unittest.TestCase):\n"
        "    def test_it(self):\n"
        "        self.assertEqual(average_word_length('ab'), 2.0)\n"
    )
    task = {
        "repo": str(repo),
        "workflow": {"run": "r1", "inputs": {"app": "sample-app"}, "rework": 0},
        "upstream": {
            "r1.fix": {
                "outputs": {"work": "bug", "tests": ["tests/test_regression.py"]},
                "drops": [
                    {"path": f"wc/{p.relative_to(copy).as_posix()}", "file": str(p)}
                    for p in sorted(copy.rglob("*.py"))
                ],
            }
        },
        "memory": {"agent": {}, "task": {}},
    }
    result = run_agent("verifier", task, tmp_path / "ws")
    assert result["status"] == "retry"
    assert result["error"] == (
        "tests/test_regression.py passes on the unfixed code, so it does not catch the bug"
    )
    assert result["memory"] == {"agent": {"passed": 0, "sent_back": 1}}
