"""The claude-code adapter checks the whole answer (issue 14, item 7): done only for subtype
`success` with is_error false and a string result; a limit (max turns, max budget) fails for
good naming the subtype; the `--verbose` array is read by its last result message; a reported
total_cost_usd is kept whatever the verdict."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from reconciler.runtime.adapters import AgentReport, Finished, claude_code_verdict
from reconciler.runtime.workspace import WorkspacePaths

OK: dict[str, Any] = {
    "type": "result",
    "subtype": "success",
    "is_error": False,
    "result": "The answer is 42.",
    "total_cost_usd": 0.0731,
    "usage": {"input_tokens": 1200, "output_tokens": 345},
}


def verdict(tmp_path: Path, stdout: str, code: int = 0) -> AgentReport:
    paths = WorkspacePaths(tmp_path)
    (tmp_path / "stderr.log").write_text("")
    data = stdout.encode()
    paths.stdout_log.write_bytes(data)
    return claude_code_verdict(Finished(code, paths, len(data), False, 1000))


@pytest.mark.parametrize(
    ("changes", "status", "words"),
    [
        # The measured case: no result, is_error false, a max-turns stop recorded as done.
        (
            {"subtype": "error_max_turns", "result": None},
            "failed",
            ["subtype error_max_turns", "a limit"],
        ),
        ({"subtype": "error_max_budget_usd", "is_error": True}, "failed", ["error_max_budget_usd"]),
        ({"subtype": "error_max_structured_output_retries"}, "failed", ["a limit"]),
        ({"subtype": "error_during_execution"}, "retry", ["error_during_execution"]),
        ({"subtype": "something_new"}, "failed", ["subtype something_new"]),
        ({"subtype": None}, "failed", ["no subtype"]),
        ({"is_error": True, "result": "API Error: 529"}, "retry", ["an error: API Error: 529"]),
        ({"result": None}, "failed", ["result is missing"]),
        ({"result": ["a", "b"]}, "failed", ["result is a list"]),
        ({"result": 42}, "failed", ["result is a int"]),
        ({"is_error": "false"}, "failed", ["is_error", "valid boolean"]),
    ],
)
def test_only_a_whole_success_is_done(
    tmp_path: Path, changes: dict[str, Any], status: str, words: list[str]
) -> None:
    report = verdict(tmp_path, json.dumps(OK | changes))
    assert report.status == status, report
    assert report.output is None
    assert report.error is not None and "\n" not in report.error
    for word in words:
        assert word in report.error, report.error
    assert report.cost_usd == Decimal("0.0731")  # what it spent is kept, whatever the verdict


def test_a_limit_stop_is_permanent_even_with_a_failing_exit(tmp_path: Path) -> None:
    report = verdict(tmp_path, json.dumps(OK | {"subtype": "error_max_turns"}), code=1)
    assert (report.status, report.cost_usd) == ("failed", Decimal("0.0731"))


def test_the_verbose_array_is_read_by_its_last_result(tmp_path: Path) -> None:
    messages = [
        {"type": "system", "subtype": "init", "session_id": "s"},
        {"type": "result", **(OK | {"result": "an earlier turn"})},
        {"type": "assistant", "message": {"content": [{"type": "text", "text": "hi"}]}},
        OK,
    ]
    report = verdict(tmp_path, json.dumps(messages))
    assert (report.status, report.output, report.tokens) == ("done", OK["result"], 1545)


def test_an_array_without_a_result_fails_saying_so(tmp_path: Path) -> None:
    report = verdict(tmp_path, json.dumps([{"type": "system"}, {"type": "assistant"}]))
    assert report.status == "failed"
    assert report.error == "claude-code output is an array of 2 messages without a result"


def test_stream_json_is_read_by_its_last_line(tmp_path: Path) -> None:
    lines = [json.dumps({"type": "system", "subtype": "init"}), json.dumps(OK)]
    report = verdict(tmp_path, "\n".join(lines))
    assert (report.status, report.output) == ("done", OK["result"])


def test_cost_is_kept_from_an_answer_that_does_not_match(tmp_path: Path) -> None:
    report = verdict(tmp_path, json.dumps(OK | {"usage": {"input_tokens": -1}}))
    assert report.status == "failed"
    assert report.error is not None and "input_tokens" in report.error
    assert report.cost_usd == Decimal("0.0731")
    crashed = verdict(tmp_path, json.dumps(OK | {"type": "oops"}), code=1)
    assert (crashed.status, crashed.cost_usd) == ("retry", Decimal("0.0731"))
