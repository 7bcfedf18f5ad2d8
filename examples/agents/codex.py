"""Run OpenAI Codex on an mc task: `codex exec --json`, then write result.json (files protocol).

Use it with `protocol: files`. The prompt (built from task.json as in claude_code.py) goes
to `codex exec --json --skip-git-repo-check [extra args] -` on stdin. Codex prints one JSON
event per line; this script echoes each line to its own stdout (so `mc logs` shows the
transcript), touches $MC_HEARTBEAT on each, and reads:

- `item.completed` with `item.type == "agent_message"`: the last one is the task's output;
- `turn.completed`: `usage.input_tokens` + `usage.output_tokens` are the tokens;
- `turn.failed` (`error.message`) or `error` (`message`): the run is retried.

The answer is checked whole: done needs exit 0, a `turn.completed` as the last turn event and
an agent message in it. A stream that ends without `turn.completed`, a turn without a message
or usage that is not a count fails the run naming what was missing (another attempt would
read the same stream). Lines that are not JSON objects are kept in the log only.

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


MAX_TOKENS = 2**53


@dataclass
class Transcript:
    """What the event stream said, folded as it arrives."""

    message: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    errors: list[str] = field(default_factory=list)
    thread_id: str | None = None
    last_turn: str | None = None  # the last turn event: turn.completed or turn.failed
    problems: list[str] = field(default_factory=list)  # the stream broke the protocol

    def add(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        item = event.get("item")
        item = item if isinstance(item, dict) else {}
        if kind == "thread.started" and isinstance(event.get("thread_id"), str):
            self.thread_id = event["thread_id"]
        elif kind == "turn.started":
            self.message = None  # only the message of the turn that completes counts
        elif kind == "item.completed" and item.get("type") == "agent_message":
            text = item.get("text")
            if isinstance(text, str):
                self.message = text
            else:
                self.problems.append("an agent_message item without a text string")
        elif kind == "turn.completed":
            self.last_turn = kind
            usage = event.get("usage")
            usage = usage if isinstance(usage, dict) else {}
            self.input_tokens += self._count(usage, "input_tokens")
            self.output_tokens += self._count(usage, "output_tokens")
        elif kind == "turn.failed":
            self.last_turn = kind
            error = event.get("error")
            message = error.get("message") if isinstance(error, dict) else None
            self.errors.append(str(message or "turn failed")[:500])
        elif kind == "error":
            self.errors.append(str(event.get("message") or "error")[:500])

    def _count(self, usage: dict[str, Any], key: str) -> int:
        value = usage.get(key, 0)
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_TOKENS:
            self.problems.append(f"turn.completed usage.{key} is not a token count")
            return 0
        return value


def parse_event(line: str) -> dict[str, Any] | None:
    """One JSONL line as an event, or None (not JSON, nested too deep, not an object)."""
    try:
        event = json.loads(line)
    except (ValueError, RecursionError):
        return None
    return event if isinstance(event, dict) else None


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
            event = parse_event(line)
            if event is not None:  # not an event (a warning line): kept in the log only
                transcript.add(event)
    return proc.returncode, transcript


def verdict(returncode: int, t: Transcript) -> dict[str, Any]:
    """result.json for a finished codex run (see the module doc); tokens are always kept."""
    tokens = min(t.input_tokens + t.output_tokens, MAX_TOKENS)
    cost = t.input_tokens * price("PRICE_USD_PER_1M_INPUT") / 1e6
    cost += t.output_tokens * price("PRICE_USD_PER_1M_OUTPUT") / 1e6
    result: dict[str, Any] = {"tokens": tokens, "cost_usd": round(cost, 6)}
    if t.errors or returncode != 0:
        detail = t.errors[-1] if t.errors else "no error event; see stderr.log"
        return {**result, "status": "retry", "error": f"codex exited {returncode}: {detail}"}
    missing = None
    if t.problems:
        missing = t.problems[0]
    elif t.last_turn != "turn.completed":
        missing = "no turn.completed event (the event stream ended before the turn did)"
    elif t.message is None:
        missing = "no agent_message in the completed turn (codex finished without a final message)"
    if missing is not None:
        return {**result, "status": "failed", "error": f"codex output: {missing}"}
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
