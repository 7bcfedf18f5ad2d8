"""Stylist agent (code-review `style`): checks line lengths, whitespace and naming.

Over every Python file of the app, tests included: lines longer than
`inputs.max_line_length`, trailing whitespace, a missing final newline, functions that are not
snake_case and classes that are not CapWords (pyscan.style_issues).
"""

import devkit
import pyscan


def main():
    task = devkit.load_task()
    app = devkit.app_dir(task)
    files = devkit.source_files(app)
    issues = pyscan.style_issues(app, files, devkit.inputs(task)["max_line_length"])
    lines = [f"- {i['file']}:{i['line']}: {i['issue']}" for i in issues] or ["No issues."]
    devkit.drop("style.md", "# Style\n\n" + "\n".join(lines) + "\n")
    devkit.finish(
        output=f"{len(issues)} style issues in {len(files)} files.",
        outputs={"issues": issues, "count": len(issues)},
    )


if __name__ == "__main__":
    main()
