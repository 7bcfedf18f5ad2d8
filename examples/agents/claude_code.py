"""Run Claude Code on an mc task: turn task.json into a prompt and exec `claude -p`.

Use it with `protocol: claude-code`. The script replaces itself with
`claude -p "<prompt>" --output-format json [extra args]`, so what mc reads on stdout is
Claude Code's own JSON result: `result` becomes the task's output, `total_cost_usd` its
cost, `usage` its tokens; only subtype `success` counts as done (`is_error: true` and
`error_during_execution` are retried, a max-turns or max-budget stop fails for good).
Arguments given after the script in the agent's `command` are passed on to `claude` (for
example `--max-turns 20`).

The prompt holds the task's title, prompt, inputs, what upstream tasks produced (their
output and the paths of their files) and any feedback on an earlier attempt. Claude Code
runs in the attempt's workspace; files it writes under out/ become content drops.

Copy this file next to the agent definition (`agents/claude_code.py` in a mission repo).
A missing `claude` binary exits 127 with a message on stderr (see `mc logs <task>`).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

FILES_NOTE = "Write any files you produce under out/ in the current directory."


def build_prompt(task: dict[str, Any]) -> str:
    """The task as one markdown prompt."""
    parts = [f"# Task: {task['title']}", task.get("prompt") or ""]
    if task.get("inputs"):
        parts.append("## Inputs\n\n" + json.dumps(task["inputs"], indent=2))
    for name, upstream in task.get("upstream", {}).items():
        lines = [f"## Result of the upstream task {name}"]
        if upstream.get("output") is not None:
            lines.append(str(upstream["output"]))
        lines += [f"- file {d['path']}: {d['file']}" for d in upstream.get("drops", [])]
        parts.append("\n\n".join(lines))
    if task.get("feedback"):
        parts.append(f"## Feedback on the previous attempt\n\n{task['feedback']}")
    parts.append(FILES_NOTE)
    return "\n\n".join(p for p in parts if p)


def main(extra: list[str]) -> int:
    task = json.loads(Path(os.environ["MC_TASK_JSON"]).read_text(encoding="utf-8"))
    claude = shutil.which(os.environ.get("CLAUDE_BIN", "claude"))
    if claude is None:
        print(
            "claude_code.py: the `claude` CLI is not on PATH;"
            " install Claude Code (npm install -g @anthropic-ai/claude-code)",
            file=sys.stderr,
        )
        return 127
    argv = [claude, "-p", build_prompt(task), "--output-format", "json", *extra]
    sys.stdout.flush()
    os.execv(claude, argv)  # stdout is now Claude Code's: the claude-code protocol reads it


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
