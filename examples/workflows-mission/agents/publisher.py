"""Publisher agent (every `pr` step): writes the pull request as content drops.

`pr.diff` is a unified diff of the run's working copy against the original app (difflib, git
style); `pr.md` is the description: the rendered step prompt (its first line is the title)
and the diff's size. Nothing is pushed anywhere: the drops are the pull request.
"""

import devkit


def main():
    task = devkit.load_task()
    diff = devkit.tree_diff(devkit.app_dir(task), devkit.working_copy(task))
    if not diff:
        devkit.finish("failed", error="the working copy has no changes to propose")
        return
    files, added, removed = devkit.diff_stats(diff)
    title, _, body = task["prompt"].strip().partition("\n")
    devkit.drop("pr.diff", diff)
    noun = "file" if files == 1 else "files"
    stats = f"{files} {noun} changed, {added} insertions(+), {removed} deletions(-)"
    devkit.drop("pr.md", f"# {title}\n\n{body.strip()}\n\n{stats}\n".replace("\n\n\n", "\n\n"))
    devkit.finish(
        output=f"Pull request '{title}': {stats}.",
        outputs={"title": title, "files_changed": files, "insertions": added, "deletions": removed},
    )


if __name__ == "__main__":
    main()
