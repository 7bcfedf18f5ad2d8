"""Analyst agent (code-review `analyze`): measures the app's code with `ast`.

Per function: length, arguments, cyclomatic complexity and whether it has a docstring; over
the app (tests excluded): files, functions, lines of code, the most complex function and
the undocumented ones. Writes metrics.md.
"""

import devkit
import pyscan


def main():
    task = devkit.load_task()
    app = devkit.app_dir(task)
    files = devkit.source_files(app, include_tests=False)
    functions = pyscan.function_metrics(app, files)
    loc = sum(
        1
        for rel in files
        for line in (app / rel).read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.strip().startswith("#")
    )
    worst = max(functions, key=lambda f: f["complexity"], default=None)
    undocumented = [f"{f['file']}:{f['name']}" for f in functions if not f["documented"]]
    table = ["| function | file | lines | args | complexity |", "|---|---|---|---|---|"]
    for f in functions:
        where = f"{f['file']}:{f['line']}"
        table.append(f"| {f['name']} | {where} | {f['lines']} | {f['args']} | {f['complexity']} |")
    devkit.drop("metrics.md", "# Metrics\n\n" + "\n".join(table) + "\n")
    devkit.finish(
        output=f"{len(files)} files, {len(functions)} functions, {loc} lines of code;"
        f" most complex: {worst['name'] if worst else '-'}.",
        outputs={
            "files": len(files),
            "functions": len(functions),
            "lines_of_code": loc,
            "max_complexity": worst["complexity"] if worst else 0,
            "most_complex": worst["name"] if worst else None,
            "undocumented": undocumented,
        },
    )


if __name__ == "__main__":
    main()
