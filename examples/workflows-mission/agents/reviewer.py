"""Reviewer agent (feature-dev `review`): reads the pull request diff and approves or rejects it.

Checks on the `pr.diff` drop of the upstream pr step: no more added lines than
`inputs.max_diff_lines`, no TODO/FIXME/XXX left in added lines, no debugging print(), and
tests changed along with the code. Writes review.md; a rejection fails the step.
"""

import re

import devkit

LEFTOVER = re.compile(r"\b(TODO|FIXME|XXX)\b|\bprint\(")


def checks(diff, max_lines):
    added = devkit.added_lines(diff)
    touched = re.findall(r"^diff --git a/(\S+) ", diff, flags=re.M)
    leftovers = [line.strip() for line in added if LEFTOVER.search(line)]
    return {
        f"at most {max_lines} added lines ({len(added)})": len(added) <= max_lines,
        f"no TODO, FIXME or print() ({len(leftovers)} found)": not leftovers,
        "tests changed with the code": any(t.startswith("tests/") for t in touched),
        "code changed, not only tests": any(not t.startswith("tests/") for t in touched),
    }


def main():
    task = devkit.load_task()
    diff_file = devkit.upstream_drop(task, "pr.diff")
    if diff_file is None:
        devkit.finish("failed", error="no pr.diff drop upstream to review")
        return
    results = checks(diff_file.read_text(encoding="utf-8"), devkit.inputs(task)["max_diff_lines"])
    failed = [name for name, ok in results.items() if not ok]
    lines = [f"- [{'x' if ok else ' '}] {name}" for name, ok in results.items()]
    verdict = "approved" if not failed else "changes requested"
    devkit.drop("review.md", f"# Review: {verdict}\n\n" + "\n".join(lines) + "\n")
    if failed:
        devkit.finish("failed", error="changes requested: " + "; ".join(failed))
        return
    devkit.finish(
        output=f"Approved: {len(results)} checks passed.",
        outputs={"approved": True, "checks": list(results)},
    )


if __name__ == "__main__":
    main()
