"""Prioritizer agent (security-audit `prioritize`): orders the scan's findings, worst first.

Order: severity (critical > high > medium > low), then findings in code that handles outside
input (a parameter reaches the smelly call) before the rest, then file and line. Findings
below `inputs.min_severity` are dropped. Outputs `work: security` and the ranked list; the
developer fixes the first one it knows a safe rewrite for.
"""

import ast

import devkit
import pyscan


def tainted(app, finding):
    """True if an argument of the enclosing function reaches the flagged call."""
    for function in ast.walk(pyscan.parse(app, finding["file"])):
        if not isinstance(function, ast.FunctionDef):
            continue
        if not function.lineno <= finding["line"] <= function.end_lineno:
            continue
        params = {a.arg for a in function.args.args}
        for call in ast.walk(function):
            if isinstance(call, ast.Call) and call.lineno == finding["line"]:
                used = {n.id for n in ast.walk(call) if isinstance(n, ast.Name)}
                if used & params:
                    return True
    return False


def main():
    task = devkit.load_task()
    app = devkit.app_dir(task)
    floor = pyscan.SEVERITY[devkit.inputs(task)["min_severity"]]
    findings = devkit.upstream_with(task, "findings")["findings"]
    kept = [
        dict(f, tainted=tainted(app, f))
        for f in findings
        if pyscan.SEVERITY[f["severity"]] >= floor
    ]
    ranked = sorted(
        kept,
        key=lambda f: (-pyscan.SEVERITY[f["severity"]], not f["tainted"], f["file"], f["line"]),
    )
    for rank, finding in enumerate(ranked, start=1):
        finding["rank"] = rank
    lines = [f"{f['rank']}. {f['severity']} {f['rule']} at {f['file']}:{f['line']}" for f in ranked]
    devkit.drop("priorities.md", "# Fix order\n\n" + "\n".join(lines) + "\n")
    devkit.finish(
        output=f"{len(ranked)} findings ranked; first: {lines[0] if lines else 'none'}.",
        outputs={"work": "security", "ranked": ranked, "dropped": len(findings) - len(kept)},
    )


if __name__ == "__main__":
    main()
