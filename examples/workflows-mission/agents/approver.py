"""Approver agent (code-review `approve`): turns the analysis, security and style results into
a verdict.

- request-changes: a critical or high security finding, or a function more complex than
  `inputs.max_complexity`;
- approve-with-comments: only lesser findings, style issues or undocumented functions;
- approve: nothing to say.

The step succeeds whatever the verdict: the verdict is its output, review.md the report.
"""

import devkit


def reasons(metrics, security, style, max_complexity):
    """(blocking, comments): lists of sentences."""
    blocking, comments = [], []
    for f in security["findings"]:
        line = f"{f['severity']} {f['rule']} at {f['file']}:{f['line']}: {f['message']}"
        (blocking if f["severity"] in ("critical", "high") else comments).append(line)
    if metrics["max_complexity"] > max_complexity:
        blocking.append(
            f"{metrics['most_complex']} has complexity {metrics['max_complexity']}"
            f" (limit {max_complexity})"
        )
    comments += [f"{i['file']}:{i['line']}: {i['issue']}" for i in style["issues"]]
    comments += [f"{name} has no docstring" for name in metrics["undocumented"]]
    return blocking, comments


def main():
    task = devkit.load_task()
    metrics = devkit.upstream_with(task, "max_complexity")
    security = devkit.upstream_with(task, "findings")
    style = devkit.upstream_with(task, "issues")
    blocking, comments = reasons(metrics, security, style, devkit.inputs(task)["max_complexity"])
    verdict = "approve-with-comments" if comments else "approve"
    if blocking:
        verdict = "request-changes"
    report = [f"# Verdict: {verdict}", "", "## Blocking", ""]
    report += [f"- {r}" for r in blocking] or ["None."]
    report += ["", "## Comments", ""]
    report += [f"- {c}" for c in comments] or ["None."]
    devkit.drop("review.md", "\n".join(report) + "\n")
    devkit.finish(
        output=f"{verdict}: {len(blocking)} blocking, {len(comments)} comments.",
        outputs={"verdict": verdict, "blocking": blocking, "comments": comments},
    )


if __name__ == "__main__":
    main()
