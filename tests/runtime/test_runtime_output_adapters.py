"""The `stdout` and `claude-code` protocols, with stand-in agents printing what the real ones do."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from runtime_harness import Agents, run_one

from reconciler.runtime.local import LocalExecutor

pytestmark = pytest.mark.timeout(30)


def claude_stand_in(payload: dict[str, object], exit_code: int = 0) -> str:
    """A script printing what `claude -p ... --output-format json` prints."""
    return f"import json, sys\nprint(json.dumps({payload!r}))\nsys.exit({exit_code})\n"


CLAUDE_OK = {
    "type": "result",
    "subtype": "success",
    "is_error": False,
    "result": "The answer is 42.",
    "total_cost_usd": 0.0731,
    "duration_ms": 5123,
    "session_id": "abc",
    "usage": {"input_tokens": 1200, "output_tokens": 345, "cache_read_input_tokens": 99},
}


def test_stdout_protocol_uses_stripped_stdout_as_output(
    executor: LocalExecutor, agents: Agents
) -> None:
    req = agents.request("print('  hello world  ')\nprint()", protocol="stdout")
    outcome = run_one(executor, req)
    assert outcome.status == "done"
    assert outcome.output == "hello world"
    assert outcome.exit_code == 0


def test_stdout_protocol_nonzero_exit_is_retry(executor: LocalExecutor, agents: Agents) -> None:
    req = agents.request(
        "import sys\nprint('partial')\nprint('upstream 503', file=sys.stderr)\nsys.exit(1)",
        protocol="stdout",
    )
    outcome = run_one(executor, req)
    assert outcome.status == "retry"
    assert outcome.output is None
    assert outcome.error == "exited with code 1: upstream 503"


def test_stdout_output_is_capped(executor: LocalExecutor, agents: Agents) -> None:
    req = agents.request("print('y' * 5000)", protocol="stdout", log_cap_bytes=1000)
    outcome = run_one(executor, req)
    assert outcome.status == "done"
    assert outcome.output == "y" * 1000


def test_claude_code_success_parses_cost_and_tokens(
    executor: LocalExecutor, agents: Agents
) -> None:
    outcome = run_one(executor, agents.request(claude_stand_in(CLAUDE_OK), protocol="claude-code"))
    assert outcome.status == "done", outcome.error
    assert outcome.output == "The answer is 42."
    assert outcome.cost_usd == Decimal("0.0731")
    assert outcome.tokens == 1200 + 345


def test_claude_code_is_error_with_exit_zero_is_a_failure(
    executor: LocalExecutor, agents: Agents
) -> None:
    payload = CLAUDE_OK | {
        "is_error": True,
        "subtype": "error_during_execution",
        "result": "API Error: overloaded",
    }
    outcome = run_one(executor, agents.request(claude_stand_in(payload), protocol="claude-code"))
    assert outcome.status == "retry"
    assert outcome.exit_code == 0
    assert outcome.error == "claude-code reported error_during_execution: API Error: overloaded"
    assert outcome.cost_usd == Decimal("0.0731")  # what it spent still counts


def test_claude_code_nonzero_exit_is_retry_even_with_a_result(
    executor: LocalExecutor, agents: Agents
) -> None:
    req = agents.request(claude_stand_in(CLAUDE_OK, exit_code=1), protocol="claude-code")
    outcome = run_one(executor, req)
    assert outcome.status == "retry"
    assert outcome.error == "exited with code 1"
    assert outcome.tokens == 1545


def test_claude_code_garbage_output_is_a_permanent_failure(
    executor: LocalExecutor, agents: Agents
) -> None:
    outcome = run_one(executor, agents.request("print('not json')", protocol="claude-code"))
    assert outcome.status == "failed"
    assert outcome.error is not None
    assert outcome.error.startswith("claude-code output is not valid JSON")


def test_claude_code_json_on_the_last_line_after_noise(
    executor: LocalExecutor, agents: Agents
) -> None:
    code = f"print('warming up...')\nprint({json.dumps(json.dumps(CLAUDE_OK))})"
    outcome = run_one(executor, agents.request(code, protocol="claude-code"))
    assert outcome.status == "done", outcome.error
    assert outcome.output == "The answer is 42."
