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
    """True if the flagged line uses a parameter of the function it sits in."""
    for node in ast.walk(pyscan.parse(app, finding["file"])):
        if isinstance(node, ast.FunctionDef) and node.lineno <= finding["line"] <= node.end_lineno:
            params = {a.arg for a in node.args.args}
            return any(p in finding["code"] for p in params)
    return False


def main():
    task = devkit.load_task()
    app = devkit.app_dir(task)
    floor = pyscan.SEVERITY[devkit.inputs(task)["min_severity"]]
    findings = devkit.upstream_with(task, "findings")["findings"]
    kept = [dict(f, tainted=tainted(app, f)) for f in findings if pyscan.SEVERITY[f["severity"]] >= floor]
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
