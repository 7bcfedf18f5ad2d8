"""examples/agents/openai-chat.yaml through `mc apply`, against a chat-completions stand-in.

The stand-in is a real HTTP server on 127.0.0.1 (the only thing replaced is the model): it
checks what the agent sends and answers like an OpenAI-compatible server.
"""

from __future__ import annotations

import json
import os
import secrets
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from examples_harness import (
    AGENTS,
    MISSION_YAML,
    files_under,
    make_repo,
    mc,
    runs_of,
    task_yaml,
    tasks,
)

MODEL = "Qwen/Qwen2.5-7B-Instruct"  # as declared in examples/agents/openai-chat.yaml
PROMPT = "Explain in one paragraph why plans are reviewed before they are applied."
REPLY = "Because a reviewed plan is exactly what gets applied, nothing slips in between."


class ChatStandIn:
    """An OpenAI-compatible /v1/chat/completions endpoint that checks each request."""

    def __init__(self, api_key: str, fail_first_with: int | None = None) -> None:
        self.api_key = api_key
        self.fail_first_with = fail_first_with
        self.requests: list[dict[str, Any]] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def problems(self, path: str, body: dict[str, Any]) -> list[str]:
        """What is wrong with a request that carried the right key."""
        found = []
        if path != "/v1/chat/completions":
            found.append(f"path {path}")
        if body.get("model") != MODEL:
            found.append(f"model {body.get('model')!r}")
        messages = body.get("messages") or [{}]
        if messages[0].get("role") != "system" or "technical writer" not in messages[0]["content"]:
            found.append("no system message with the agent's role")
        if messages[-1].get("role") != "user" or PROMPT not in messages[-1].get("content", ""):
            found.append("the user message does not hold the task's prompt")
        return found

    def answer(self, path: str, headers: Any, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        self.requests.append({"path": path, "body": body, "auth": headers.get("Authorization")})
        if headers.get("Authorization") != f"Bearer {self.api_key}":
            return 401, {"error": {"message": "Incorrect API key provided"}}
        problems = self.problems(path, body)
        if problems:
            return 400, {"error": {"message": "; ".join(problems)}}
        if self.fail_first_with and len(self.requests) == 1:
            return self.fail_first_with, {"error": {"message": "model is loading"}}
        return 200, {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": 1764000000,
            "model": MODEL,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": REPLY},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 120, "completion_tokens": 30, "total_tokens": 150},
        }

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                size = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(size) or b"{}")
                status, payload = stand_in.answer(self.path, self.headers, body)
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler

    def __enter__(self) -> ChatStandIn:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def api_key() -> str:
    return "sk-test-" + secrets.token_hex(16)


def chat_mission(root: Path, base_url: str) -> Path:
    agent = (AGENTS / "openai-chat.yaml").read_text()
    assert "http://127.0.0.1:8000/v1" in agent
    agent = agent.replace("http://127.0.0.1:8000/v1", base_url)
    agent = agent.replace('PRICE_USD_PER_1M_INPUT: "0"', 'PRICE_USD_PER_1M_INPUT: "1000"')
    files: dict[str, str | Path] = {
        "mission.yaml": MISSION_YAML,
        "agents/openai-chat.yaml": agent,
        "agents/openai_chat.py": AGENTS / "openai_chat.py",
        "tasks/explain.yaml": task_yaml("explain", "openai-chat", PROMPT, max_attempts=2),
    }
    return make_repo(files, root)


def test_openai_chat_agent_answers_through_mc(tmp_path: Path, api_key: str) -> None:
    with ChatStandIn(api_key, fail_first_with=503) as server:
        root = chat_mission(tmp_path / "mission", server.base_url)
        mc("apply", "--auto-approve", cwd=root, env={**os.environ, "OPENAI_API_KEY": api_key})
    assert len(server.requests) == 2

    task = tasks(root)["explain"]
    assert task.state == "DONE", task.reason
    assert task.output == REPLY
    assert task.outputs == {"model": MODEL, "finish_reason": "stop"}

    runs = runs_of(root, "explain")
    assert [r["status"] for r in runs] == ["retry", "done"]
    assert runs[0]["error"] == "HTTP 503 from the chat server: model is loading"
    assert runs[1]["tokens"] == 150
    assert float(runs[1]["cost_usd"]) == pytest.approx(0.12)  # 120 tokens at $1000 per 1M

    # The key went only into the agent's environment: no file mc keeps holds it.
    leaks = [p for p in files_under(root / ".mc") if api_key.encode() in p.read_bytes()]
    assert leaks == []


def test_openai_chat_agent_fails_on_a_refused_key(tmp_path: Path, api_key: str) -> None:
    with ChatStandIn(api_key) as server:
        root = chat_mission(tmp_path / "mission", server.base_url)
        env = {**os.environ, "OPENAI_API_KEY": "sk-wrong-key-0123456789"}
        mc("apply", "--auto-approve", cwd=root, env=env)
    task = tasks(root)["explain"]
    assert task.state == "FAILED"
    assert "HTTP 401 from the chat server: Incorrect API key provided" in (task.reason or "")
    assert len(server.requests) == 1  # a 4xx is not retried


def test_openai_chat_agent_is_blocked_without_its_key(tmp_path: Path) -> None:
    root = chat_mission(tmp_path / "mission", "http://127.0.0.1:9/v1")
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    mc("apply", "--auto-approve", cwd=root, env=env)
    task = tasks(root)["explain"]
    assert task.state == "BLOCKED"
    assert "OPENAI_API_KEY" in (task.reason or "")
