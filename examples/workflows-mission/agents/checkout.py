"""Checkout agent (every `setup` step): copies the app into this run's working copy.

The steps of a run get separate workspaces, so the code they change travels as content drops
(`out/wc/`, see devkit.working_copy): this step leaves the first copy. A re-run starts fresh.
"""

import devkit


def main():
    task = devkit.load_task()
    app, copy = devkit.app_dir(task), devkit.working_copy(task)
    if not (app / "tests").is_dir():
        devkit.finish("failed", error=f"{app} has no tests/ folder to verify changes with")
        return
    devkit.copy_tree(app, copy)
    files = devkit.source_files(copy)
    devkit.finish(
        output=f"Copied {len(files)} Python files of {app.name} to {copy}.",
        outputs={"working_copy": str(copy), "files": len(files)},
    )


if __name__ == "__main__":
    main()
