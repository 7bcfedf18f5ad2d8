"""Run OpenAI Codex on an mc task: `codex exec --json`, then write result.json (files protocol).

Use it with `protocol: files`. The prompt (built from task.json as in claude_code.py) goes
to `codex exec --json --skip-git-repo-check [extra args] -` on stdin. Codex prints one JSON
event per line; this script echoes each line to its own stdout (so `mc logs` shows the
transcript), touches $MC_HEARTBEAT on each, and reads:

- `item.completed` with `item.type == "agent_message"`: the last one is the task's output;
- `turn.completed`: `usage.input_tokens` + `usage.output_tokens` are the tokens;
- `turn.failed` (`error.message`) or `error` (`message`): the run is retried.

Codex does not report money; set PRICE_USD_PER_1M_INPUT and PRICE_USD_PER_1M_OUTPUT in the
agent's env to have mc account for it. Arguments after the script in `command` go to
`codex exec` (for example `--sandbox workspace-write` or `-m <model>`).

Copy this file next to the agent definition (`agents/codex.py` in a mission repo).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
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


@dataclass
class Transcript:
    """What the event stream said, folded as it arrives."""

    message: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    errors: list[str] = field(default_factory=list)
    thread_id: str | None = None

    def add(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        item = event.get("item") or {}
        if kind == "thread.started":
            self.thread_id = event.get("thread_id")
        elif kind == "item.completed" and item.get("type") == "agent_message":
            self.message = item.get("text", "")
        elif kind == "turn.completed":
            usage = event.get("usage") or {}
            self.input_tokens += int(usage.get("input_tokens", 0))
            self.output_tokens += int(usage.get("output_tokens", 0))
        elif kind == "turn.failed":
            self.errors.append(str((event.get("error") or {}).get("message", "turn failed")))
        elif kind == "error":
            self.errors.append(str(event.get("message", "error")))


def price(name: str) -> float:
    return float(os.environ.get(name) or 0)


def run_codex(codex: str, prompt: str, extra: list[str]) -> tuple[int, Transcript]:
    """Run codex, echo and fold its JSONL events; (exit code, transcript)."""
    argv = [codex, "exec", "--json", "--skip-git-repo-check", *extra, "-"]
    heartbeat = Path(os.environ["MC_HEARTBEAT"]) if "MC_HEARTBEAT" in os.environ else None
    transcript = Transcript()
    with subprocess.Popen(
        argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, encoding="utf-8"
    ) as proc:
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(prompt)
        proc.stdin.close()
        for line in proc.stdout:
            sys.stdout.write(line)
            if heartbeat is not None:
                heartbeat.touch()
            try:
                event = json.loads(line)
            except ValueError:
                continue  # not an event (a warning line): kept in the log only
            if isinstance(event, dict):
                transcript.add(event)
    return proc.returncode, transcript


def verdict(returncode: int, t: Transcript) -> dict[str, Any]:
    """result.json for a finished codex run."""
    tokens = t.input_tokens + t.output_tokens
    cost = t.input_tokens * price("PRICE_USD_PER_1M_INPUT") / 1e6
    cost += t.output_tokens * price("PRICE_USD_PER_1M_OUTPUT") / 1e6
    result: dict[str, Any] = {"tokens": tokens, "cost_usd": round(cost, 6)}
    if t.errors or returncode != 0:
        detail = t.errors[-1] if t.errors else "no error event; see stderr.log"
        return {**result, "status": "retry", "error": f"codex exited {returncode}: {detail}"}
    if t.message is None:
        return {**result, "status": "failed", "error": "codex finished without a final message"}
    outputs = {"thread_id": t.thread_id} if t.thread_id else {}
    return {**result, "status": "done", "output": t.message, "outputs": outputs}


def main(extra: list[str]) -> int:
    task = json.loads(Path(os.environ["MC_TASK_JSON"]).read_text(encoding="utf-8"))
    result_file = Path(os.environ["MC_RESULT_JSON"])
    codex = shutil.which(os.environ.get("CODEX_BIN", "codex"))
    if codex is None:
        message = "the `codex` CLI is not on PATH; install it (npm install -g @openai/codex)"
        result_file.write_text(json.dumps({"status": "failed", "error": message}))
        print(f"codex.py: {message}", file=sys.stderr)
        return 0  # a deliberate, permanent failure, stated in result.json
    returncode, transcript = run_codex(codex, build_prompt(task), extra)
    result_file.write_text(json.dumps(verdict(returncode, transcript), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
