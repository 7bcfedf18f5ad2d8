"""The Codex wrapper checks the whole answer (issue 14, item 7): done needs exit 0, a
`turn.completed` as the last turn event and an agent message; anything missing fails the run
naming it; hostile event lines (not JSON, nested deep, wrong types) never crash the wrapper."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

WRAPPER = Path(__file__).parents[2] / "examples" / "agents" / "codex.py"


def load_wrapper() -> ModuleType:
    spec = importlib.util.spec_from_file_location("codex_wrapper", WRAPPER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["codex_wrapper"] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


codex = load_wrapper()

STARTED = {"type": "thread.started", "thread_id": "t-1"}
TURN = {"type": "turn.started"}
MESSAGE = {"type": "item.completed", "item": {"type": "agent_message", "text": "Done it."}}
COMPLETED = {"type": "turn.completed", "usage": {"input_tokens": 2400, "output_tokens": 310}}


def verdict(lines: list[Any], returncode: int = 0) -> dict[str, Any]:
    transcript = codex.Transcript()
    for line in lines:
        event = codex.parse_event(line if isinstance(line, str) else json.dumps(line))
        if event is not None:
            transcript.add(event)
    result: dict[str, Any] = codex.verdict(returncode, transcript)
    return result


def test_a_whole_answer_is_done() -> None:
    result = verdict([STARTED, TURN, MESSAGE, COMPLETED])
    assert result["status"] == "done", result
    assert (result["output"], result["tokens"]) == ("Done it.", 2710)
    assert result["outputs"] == {"thread_id": "t-1"}


@pytest.mark.parametrize(
    ("lines", "words"),
    [
        ([STARTED, TURN, MESSAGE], ["no turn.completed event"]),
        ([STARTED, TURN, COMPLETED], ["no agent_message"]),
        ([STARTED, TURN, MESSAGE, COMPLETED, TURN, COMPLETED], ["no agent_message"]),
        ([], ["no turn.completed event"]),
        (
            [TURN, MESSAGE, {"type": "turn.completed", "usage": {"input_tokens": "many"}}],
            ["usage.input_tokens is not a token count"],
        ),
        (
            [TURN, MESSAGE, {"type": "turn.completed", "usage": {"output_tokens": 10**40}}],
            ["usage.output_tokens"],
        ),
        (
            [TURN, {"type": "item.completed", "item": {"type": "agent_message", "text": 7}}],
            ["agent_message item without a text string"],
        ),
    ],
)
def test_an_incomplete_answer_fails_naming_what_is_missing(
    lines: list[Any], words: list[str]
) -> None:
    result = verdict(lines)
    assert result["status"] == "failed", result
    for word in words:
        assert word in result["error"], result["error"]
    json.dumps(result)  # a result.json mc can read


def test_hostile_lines_are_log_only_and_never_crash_the_wrapper() -> None:
    lines = [
        "[" * 100_000,
        "not json",
        "[1, 2]",
        json.dumps({"type": "item.completed", "item": "not an object"}),
        json.dumps({"type": "turn.failed", "error": "not an object"}),
        TURN,
        MESSAGE,
        COMPLETED,
    ]
    result = verdict(lines)
    assert result["status"] == "retry"  # the turn.failed line counts, as a transient failure
    assert "turn failed" in result["error"]
    assert result["tokens"] == 2710  # tokens are kept whatever the verdict


def test_a_failing_exit_is_a_retry_with_the_tokens_kept() -> None:
    result = verdict([TURN, MESSAGE, COMPLETED], returncode=1)
    assert (result["status"], result["tokens"]) == ("retry", 2710)
