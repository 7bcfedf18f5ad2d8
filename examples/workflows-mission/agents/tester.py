"""Tester agent (feature-dev and security-audit `test`): runs the suite and reports the counts.

It runs the working copy's unittest suite and the original app's, and reports how many tests
ran, passed and failed, and how many the change added. Any failure fails the step.
"""

import devkit


def main():
    task = devkit.load_task()
    report = devkit.run_tests(devkit.working_copy(task))
    baseline = devkit.run_tests(devkit.app_dir(task))
    failed = len(report["failures"])
    passed = report["run"] - failed - report["skipped"]
    outputs = {
        "tests_run": report["run"],
        "passed": passed,
        "failed": failed,
        "skipped": report["skipped"],
        "added": report["run"] - baseline["run"],
        "ok": failed == 0 and report["run"] > 0,
    }
    summary = f"{report['run']} tests: {passed} passed, {failed} failed ({outputs['added']} new)."
    if not outputs["ok"]:
        devkit.finish("failed", error=f"{summary} {devkit.describe_failures(report)}")
        return
    devkit.finish(output=summary, outputs=outputs)


if __name__ == "__main__":
    main()
