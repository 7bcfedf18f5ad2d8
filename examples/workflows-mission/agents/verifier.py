"""Verifier agent (every `verify` step): runs the tests and sends failing work back.

It runs the whole unittest suite of the run's working copy. Any failure returns status
`retry` with the failing tests as `error`: mc sends the verified step back with that text as
its `feedback` (at most `max_rework` times). On top of the suite it checks what the change
claims, from the developer's outputs:

- bug: the new regression test must FAIL on the original app, or it does not capture the bug;
- security: a rescan must find fewer findings of the fixed rule in the file than before.

Memory: the agent counts the changes it passed and sent back.
"""

import os
import shutil
from pathlib import Path

import devkit
import pyscan


def suite_problems(copy):
    report = devkit.run_tests(copy)
    if report["failures"]:
        failed = len(report["failures"])
        return report, [
            f"{failed} of {report['run']} tests failed: {devkit.describe_failures(report)}"
        ]
    if report["run"] == 0:
        return report, ["no tests ran"]
    return report, []


def regression_problems(task, change):
    """The new tests, run against the original code, must fail."""
    original = Path(os.environ["MC_WORKSPACE"], "original")
    devkit.copy_tree(devkit.app_dir(task), original)
    for rel in change["tests"]:
        shutil.copyfile(devkit.working_copy(task) / rel, original / rel)
    failing = {test_id for test_id, _ in devkit.run_tests(original)["failures"]}
    quiet = [
        rel
        for rel in change["tests"]
        if not any(t.startswith(devkit.module_name(rel) + ".") for t in failing)
    ]
    return [f"{rel} passes on the unfixed code, so it does not catch the bug" for rel in quiet]


def finding_problems(task, change):
    fixed = change["fixed"]

    def count(root):
        found = pyscan.security_findings(root, [fixed["file"]])
        return sum(1 for f in found if f["rule"] == fixed["rule"])

    if count(devkit.working_copy(task)) >= count(devkit.app_dir(task)):
        return [f"{fixed['rule']} is still in {fixed['file']}"]
    return []


def main():
    task = devkit.load_task()
    change = devkit.upstream_with(task, "work")
    report, problems = suite_problems(devkit.working_copy(task))
    if change.get("work") == "bug":
        problems += regression_problems(task, change)
    elif change.get("work") == "security":
        problems += finding_problems(task, change)
    counts = task["memory"]["agent"]
    passed, sent_back = counts.get("passed", 0), counts.get("sent_back", 0)
    if problems:
        memory = {"agent": {"passed": passed, "sent_back": sent_back + 1}}
        devkit.finish("retry", error="; ".join(problems), memory=memory)
        return
    reworks = task["workflow"]["rework"]
    devkit.finish(
        output=f"Verified after {reworks} rework(s): all {report['run']} tests pass.",
        outputs={"tests_run": report["run"], "reworks": reworks},
        memory={"agent": {"passed": passed + 1, "sent_back": sent_back}},
    )


if __name__ == "__main__":
    main()
