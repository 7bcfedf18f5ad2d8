"""Scanner agent (security-audit `scan`, code-review `security`): finds security smells.

Reads the app's own modules (tests excluded) with `ast` — never imports or runs them — and
reports each call to eval/exec, shell=True, yaml.load without a Loader, pickle loads and weak
hashes, with file, line and severity (see pyscan.security_findings).
"""

import collections

import devkit
import pyscan


def report(findings):
    lines = ["# Security findings", ""]
    for f in findings:
        lines.append(f"- **{f['severity']}** `{f['rule']}` {f['file']}:{f['line']}: {f['message']}")
        lines.append(f"  `{f['code']}`")
    if not findings:
        lines.append("No findings.")
    return "\n".join(lines) + "\n"


def main():
    task = devkit.load_task()
    app = devkit.app_dir(task)
    files = devkit.source_files(app, include_tests=False)
    findings = pyscan.security_findings(app, files)
    by_severity = dict(collections.Counter(f["severity"] for f in findings))
    devkit.drop("findings.md", report(findings))
    summary = ", ".join(f"{n} {s}" for s, n in sorted(by_severity.items())) or "none"
    devkit.finish(
        output=f"Scanned {len(files)} files: {len(findings)} findings ({summary}).",
        outputs={"findings": findings, "count": len(findings), "by_severity": by_severity},
    )


if __name__ == "__main__":
    main()
