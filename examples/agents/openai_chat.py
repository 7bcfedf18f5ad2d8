"""An mc agent backed by any OpenAI-compatible chat-completions server (stdlib only).

Use it with `protocol: files`. It POSTs the task (title, prompt, inputs, upstream outputs and
the text of upstream files, as one user message; the agent's role as the system message) to
`$OPENAI_BASE_URL/chat/completions` and writes result.json: the reply is the output (and
out/reply.md, a content drop), `usage` gives the tokens.

Environment (set in the agent's `env`; the key by reference, `{from_env: OPENAI_API_KEY}`):

- OPENAI_BASE_URL   default http://127.0.0.1:8000/v1 (vLLM, llama.cpp, Ollama's /v1, …)
- OPENAI_MODEL      required: the model name the server serves
- OPENAI_API_KEY    sent as `Authorization: Bearer …`; never written anywhere
- OPENAI_TIMEOUT_S  default 300
- PRICE_USD_PER_1M_INPUT, PRICE_USD_PER_1M_OUTPUT   optional prices, for cost_usd

HTTP 429, 5xx, timeouts and unreachable servers are `retry`; other errors `failed`.
Copy this file next to the agent definition (`agents/openai_chat.py` in a mission repo).
"""

from __future__ import annotations

import http.client
import json
import os
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

DEFAULT_BASE_URL = "http://127.0.0.1:8000/v1"
INLINE_LIMIT = 20_000  # characters of each upstream text file put into the prompt


def upstream_files(upstream: dict[str, Any]) -> list[str]:
    """The upstream drops a chat model can read: text, inlined up to INLINE_LIMIT."""
    parts = []
    for drop in upstream.get("drops", []):
        media = drop.get("media_type", "")
        if not (media.startswith("text/") or media.endswith(("json", "yaml"))):
            continue
        text = Path(drop["file"]).read_text(encoding="utf-8", errors="replace")
        parts.append(f"### File {drop['path']}\n\n{text[:INLINE_LIMIT]}")
    return parts


def build_prompt(task: dict[str, Any]) -> str:
    """The task as one markdown prompt."""
    parts = [f"# Task: {task['title']}", task.get("prompt") or ""]
    if task.get("inputs"):
        parts.append("## Inputs\n\n" + json.dumps(task["inputs"], indent=2))
    for name, upstream in task.get("upstream", {}).items():
        lines = [f"## Result of the upstream task {name}"]
        if upstream.get("output") is not None:
            lines.append(str(upstream["output"]))
        parts.append("\n\n".join(lines + upstream_files(upstream)))
    if task.get("feedback"):
        parts.append(f"## Feedback on the previous attempt\n\n{task['feedback']}")
    return "\n\n".join(p for p in parts if p)


def chat(base_url: str, api_key: str, body: dict[str, Any], timeout: float) -> dict[str, Any]:
    request = urllib.request.Request(
        base_url.rstrip("/") + "/chat/completions",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {api_key}"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        answer: dict[str, Any] = json.loads(response.read())
        return answer


def http_error(exc: urllib.error.HTTPError) -> dict[str, Any]:
    """A server's refusal as result.json: 429 and 5xx are worth retrying, the rest are not."""
    try:
        detail = json.loads(exc.read()).get("error", {}).get("message", exc.reason)
    except (ValueError, AttributeError):
        detail = exc.reason
    status = "retry" if exc.code == 429 or exc.code >= 500 else "failed"
    return {"status": status, "error": f"HTTP {exc.code} from the chat server: {detail}"}


def completion_result(answer: dict[str, Any]) -> dict[str, Any]:
    """result.json for a chat completion: the reply, its tokens and (if priced) its cost."""
    try:
        choice = answer["choices"][0]
        reply = choice["message"]["content"] or ""
    except (KeyError, IndexError, TypeError):
        return {"status": "failed", "error": "the chat server's answer has no choices[0].message"}
    usage = answer.get("usage") or {}
    prompt_tokens = int(usage.get("prompt_tokens", 0))
    completion_tokens = int(usage.get("completion_tokens", 0))
    cost = prompt_tokens * float(os.environ.get("PRICE_USD_PER_1M_INPUT") or 0) / 1e6
    cost += completion_tokens * float(os.environ.get("PRICE_USD_PER_1M_OUTPUT") or 0) / 1e6
    Path(os.environ["MC_OUT_DIR"], "reply.md").write_text(reply, encoding="utf-8")
    return {
        "status": "done",
        "output": reply,
        "outputs": {"model": answer.get("model"), "finish_reason": choice.get("finish_reason")},
        "tokens": prompt_tokens + completion_tokens,
        "cost_usd": round(cost, 6),
    }


def run(task: dict[str, Any]) -> dict[str, Any]:
    base_url = os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL
    model = os.environ.get("OPENAI_MODEL")
    if not model:
        return {"status": "failed", "error": "set OPENAI_MODEL in the agent's env"}
    messages = [{"role": "user", "content": build_prompt(task)}]
    role = (task.get("agent") or {}).get("role")
    if role:
        messages.insert(0, {"role": "system", "content": role})
    body = {"model": model, "messages": messages}
    timeout = float(os.environ.get("OPENAI_TIMEOUT_S") or 300)
    try:
        answer = chat(base_url, os.environ.get("OPENAI_API_KEY", ""), body, timeout)
    except urllib.error.HTTPError as exc:
        return http_error(exc)
    except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return {"status": "retry", "error": f"cannot reach {base_url}: {reason}"}
    except ValueError as exc:
        return {"status": "failed", "error": f"the chat server's answer is not JSON: {exc}"}
    return completion_result(answer)


def main() -> int:
    task = json.loads(Path(os.environ["MC_TASK_JSON"]).read_text(encoding="utf-8"))
    result = run(task)
    Path(os.environ["MC_RESULT_JSON"]).write_text(json.dumps(result, indent=2))
    print(result.get("error") or f"{result['tokens']} tokens")
    return 0


if __name__ == "__main__":
    sys.exit(main())
