"""The one boundary (runtime/boundary.py): result.json, cost.json, claude-code output and drop
names are parsed into strict, bounded values, and anything else is a one-line reason naming the
field — never an exception (RecursionError, overflow) and never a value the state cannot store."""

from __future__ import annotations

import json
import os
import time
from decimal import Decimal
from pathlib import Path

import pytest

from reconciler.runtime.adapters import (
    AgentReport,
    Finished,
    claude_code_verdict,
    files_verdict,
    left_result,
)
from reconciler.runtime.boundary import (
    MAX_DEPTH,
    MAX_TOKENS,
    Refused,
    check_name,
    checked_outcome,
    load_json,
)
from reconciler.runtime.cost import cost_file, parse_cost, with_cost
from reconciler.runtime.drop_store import DropsRefused, store_drops
from reconciler.runtime.leftovers import left_outcome
from reconciler.runtime.types import Drop, DropCaps, Outcome
from reconciler.runtime.workspace import WorkspacePaths

DEEP = b"[" * 100_000


def verdict_of(tmp_path: Path, result: bytes | str, code: int = 0) -> AgentReport:
    paths = WorkspacePaths(tmp_path)
    (tmp_path / "stderr.log").write_text("")
    data = result.encode("utf-8", "surrogatepass") if isinstance(result, str) else result
    paths.result_json.write_bytes(data)
    return files_verdict(Finished(code, paths, 0, False, 10 * 1024 * 1024))


def one_line_failure(report: AgentReport, *words: str) -> None:
    assert report.status == "failed", report
    assert report.error is not None and "\n" not in report.error and len(report.error) <= 300
    for word in words:
        assert word in report.error, report.error


# --- JSON ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (DEEP, ["nested deeper than 64"]),
        (b'{"a": ' + b"[" * 65 + b"]" * 65 + b"}", ["a[0][0]", "nested deeper than 64"]),
        (b'{"a": NaN}', ["NaN"]),
        (b'{"a": 1e999}', ["a is not a finite number"]),
        (b'{"a": 1, "a": 2}', ["key a appears twice"]),
        (b'{"a": "\\ud800x"}', ["a is not valid Unicode"]),
        (b'{"\\udfff": 1}', ["a key of (top level) is not valid Unicode"]),
        (b'{"a": ' + b"9" * 30 + b"}", ["a is an integer out of range"]),
        (b'{"a": ' + b"9" * 5000 + b"}", ["not valid JSON"]),
        (b'{"a": "\xff"}', ["not UTF-8"]),
        ("\ufeff{}".encode("utf-16"), ["not UTF-8"]),
    ],
)
def test_load_json_refuses_with_a_reason(data: bytes, words: list[str]) -> None:
    with pytest.raises(Refused) as caught:
        load_json(data, "x.json")
    message = str(caught.value)
    assert message.startswith("x.json")
    for word in words:
        assert word in message, message


def test_load_json_takes_the_deepest_allowed_document() -> None:
    deep = "[" * MAX_DEPTH + "1" + "]" * MAX_DEPTH
    assert load_json(deep, "x.json") is not None
    with pytest.raises(Refused, match="nested deeper"):
        load_json("[" + deep + "]", "x.json")


# --- result.json -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("result", "words"),
    [
        (DEEP, ["result.json", "nested deeper than 64"]),
        ('{"status": "done", "output": "\\ud800x"}', ["result.json", "output", "Unicode"]),
        ('{"status": "done", "outputs": {"k": ["\\udc00"]}}', ["outputs.k[0]", "Unicode"]),
        ('{"status": "done", "memory": {"agent": {"k": "\\ud800"}}}', ["memory.agent.k"]),
        ('{"status": "done", "error": "\\ud800"}', ["error", "Unicode"]),
        ('{"status": "done", "tokens": ' + "9" * 4000 + "}", ["tokens"]),
        ('{"status": "done", "tokens": 9007199254740993}', ["tokens", "less than or equal"]),
        ('{"status": "done", "cost_usd": 1e999999}', ["cost_usd"]),
        ('{"status": "done", "cost_usd": 1000000.5}', ["cost_usd", "less than or equal"]),
        ('{"status": "done", "cost_usd": -1}', ["cost_usd"]),
        ('{"status": "done", "outputs": {"' + "k" * 300 + '": 1}}', ["outputs", "key of 300"]),
        ('{"status": "done", "memory": {"agent": {"k": "' + "x" * 2**21 + '"}}}', ["memory"]),
    ],
)
def test_result_json_outside_the_bounds_fails_the_run(
    tmp_path: Path, result: bytes | str, words: list[str]
) -> None:
    one_line_failure(verdict_of(tmp_path, result), *words)


def test_result_json_costs_are_kept_to_six_decimals(tmp_path: Path) -> None:
    report = verdict_of(tmp_path, '{"status": "done", "cost_usd": 0.30000000000000004}')
    assert (report.status, report.cost_usd) == ("done", Decimal("0.300000"))
    report = verdict_of(
        tmp_path, '{"status": "done", "cost_usd": 1.25, "tokens": 9007199254740992}'
    )
    assert (report.cost_usd, report.tokens) == (Decimal("1.25"), MAX_TOKENS)


def test_a_refused_result_json_left_by_a_dead_reconciler_is_not_an_outcome(tmp_path: Path) -> None:
    paths = WorkspacePaths(tmp_path)
    paths.result_json.write_bytes(DEEP)
    assert left_result(paths, 10 * 1024 * 1024) is None
    paths.result_json.write_text('{"status": "done", "output": "\\ud800"}')
    assert left_outcome("r", tmp_path, "files", None, [], time.time()) is None


# --- cost.json -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cost", "words"),
    [
        (b"[" * 30_000, ["cost.json", "nested deeper than 64"]),
        (b'{"cost_usd": 1e999999}', ["cost.json: cost_usd", "0 to 1000000"]),
        (b'{"cost_usd": 1000001}', ["cost.json: cost_usd", "0 to 1000000"]),
        (b'{"cost_usd": -0.5}', ["cost_usd"]),
        (b'{"cost_usd": "1.0"}', ["cost_usd is not a number"]),
        (b'{"cost_usd": true}', ["cost_usd is not a number"]),
        (b"[1]", ["cost_usd is missing"]),
        (b'{"cost_usd": Infinity}', ["cost.json is not valid JSON"]),
        (b" " * 70_000, ["cost.json is 70000 bytes"]),
    ],
)
def test_cost_json_outside_the_bounds_is_refused(
    tmp_path: Path, cost: bytes, words: list[str]
) -> None:
    paths = WorkspacePaths(tmp_path)
    paths.cost_json.write_bytes(cost)
    refused = cost_file(paths)
    assert isinstance(refused, str)
    for word in words:
        assert word in refused, refused
    assert parse_cost(paths) == 0  # while the run goes: read as nothing spent
    ended = with_cost(AgentReport("done", None, output="x"), paths, Decimal("0.5"))
    assert (ended.status, ended.error, ended.output, ended.cost_usd) == (
        "failed",
        refused,
        None,
        Decimal("0.5"),
    )


def test_cost_json_cut_short_by_a_crash_keeps_the_retry(tmp_path: Path) -> None:
    paths = WorkspacePaths(tmp_path)
    paths.cost_json.write_bytes(b'{"cost_usd": 0.2')
    crashed = AgentReport("retry", "exited with code 1")
    assert with_cost(crashed, paths, Decimal(0)) == crashed
    paths.cost_json.write_bytes(b"[" * 30_000)
    assert with_cost(crashed, paths, Decimal(0)).status == "failed"
    stopped = AgentReport("canceled", "canceled: by you")
    assert with_cost(stopped, paths, Decimal(0)) == stopped


def test_cost_json_is_kept_to_six_decimals(tmp_path: Path) -> None:
    paths = WorkspacePaths(tmp_path)
    paths.cost_json.write_bytes(b'{"cost_usd": 0.1234567, "note": "ok"}')
    assert cost_file(paths) == Decimal("0.123457")
    paths.cost_json.write_bytes(b'{"cost_usd": 1.2}')
    assert str(cost_file(paths)) == "1.2"


# --- claude-code output ----------------------------------------------------------------------


def claude_verdict(tmp_path: Path, stdout: bytes) -> AgentReport:
    paths = WorkspacePaths(tmp_path)
    (tmp_path / "stderr.log").write_text("")
    paths.stdout_log.write_bytes(stdout)
    return claude_code_verdict(Finished(0, paths, len(stdout), False, 1000))


@pytest.mark.parametrize(
    ("doc", "words"),
    [
        (b"[" * 100_000, ["claude-code output", "nested deeper"]),
        (b'{"type": "result", "result": "\\ud800"}', ["result is not valid Unicode"]),
        (b'{"type": "result", "total_cost_usd": 1e999999}', ["total_cost_usd"]),
        (b'{"type": "result", "total_cost_usd": 5e6}', ["total_cost_usd"]),
        (b'{"type": "result", "usage": {"input_tokens": 1e400}}', ["input_tokens"]),
        (
            b'{"type": "result", "usage": {"input_tokens": 9007199254740992,'
            b' "output_tokens": 9007199254740992}}',
            ["more than 9007199254740992 tokens"],
        ),
    ],
)
def test_claude_code_output_outside_the_bounds_fails_the_run(
    tmp_path: Path, doc: bytes, words: list[str]
) -> None:
    one_line_failure(claude_verdict(tmp_path, doc), *words)


# --- drop names ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "why"),
    [
        (b"\xff\xfe.txt", "is not valid UTF-8"),
        (b"a\nb.txt", "has a control character"),
        (b"a\x1b[31m.txt", "has a control character"),
        ("caf\u00e9.txt".encode(), None),
    ],
)
def test_check_name(name: bytes, why: str | None) -> None:
    assert check_name(os.fsdecode(name)) == why


@pytest.mark.parametrize(
    ("rel", "shown"),
    [
        (b"\xff\xfe.txt", "out/\\xff\\xfe.txt: the name is not valid UTF-8"),
        (b"sub\xff/a.txt", "out/sub\\xff: the name is not valid UTF-8"),
        (b"new\nline", "out/new\\nline: the name has a control character"),
    ],
)
def test_a_drop_name_that_is_not_text_refuses_the_drops(
    tmp_path: Path, rel: bytes, shown: str
) -> None:
    ws = tmp_path / "repo" / ".mc" / "work" / "t" / "1"
    target = os.path.join(os.fsencode(ws / "out"), rel)
    os.makedirs(os.path.dirname(target), exist_ok=True)
    with open(target, "wb") as f:
        f.write(b"x")
    (ws / "out" / "fine.txt").write_text("fine")
    refused = store_drops(ws, DropCaps())
    assert isinstance(refused, DropsRefused) and refused.status == "failed"
    assert shown in refused.reason, refused.reason
    refused.reason.encode("utf-8")  # the reason itself can be stored
    assert not (tmp_path / "repo" / ".mc" / "drops").exists() or not any(
        p.is_file() for p in (tmp_path / "repo" / ".mc" / "drops").rglob("*")
    )


# --- the engine's check of a whole Outcome ---------------------------------------------------


def outcome(**fields: object) -> Outcome:
    base: dict[str, object] = {"run_id": "r", "status": "done", "error": None, "exit_code": 0}
    return Outcome(**(base | fields), started_at=0.0, ended_at=1.0)  # type: ignore[arg-type]


def test_a_storable_outcome_passes_unchanged() -> None:
    fine = outcome(output={"a": [1, 2.5, "x"]}, cost_usd=Decimal("1.5"), tokens=3)
    assert checked_outcome(fine) is fine


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"cost_usd": Decimal("1e999999")}, ["cost_usd"]),
        ({"cost_usd": Decimal("NaN")}, ["cost_usd"]),
        ({"tokens": 10**4000}, ["tokens"]),
        ({"output": "\ud800x"}, ["output", "Unicode"]),
        ({"error": "bad \udcff"}, ["error", "Unicode"]),
        ({"outputs": {"k": float("inf")}}, ["outputs.k"]),
        ({"memory": {"agent": {"k": object()}}}, ["memory.agent.k"]),
        ({"output": json.loads("[" * 200 + "]" * 200)}, ["nested deeper"]),
        (
            {"drops": (Drop("\udcff.txt", "0" * 64, 1, "text/plain", Path("/x")),)},
            ["drop out/", "UTF-8"],
        ),
    ],
)
def test_an_unstorable_outcome_becomes_a_failed_run(
    fields: dict[str, object], words: list[str]
) -> None:
    checked = checked_outcome(outcome(**fields))
    assert checked.status == "failed"
    assert checked.error is not None and checked.error.startswith("mc refused what the run")
    checked.error.encode("utf-8")
    for word in words:
        assert word in checked.error, checked.error
    assert (checked.output, dict(checked.outputs), dict(checked.memory), checked.drops) == (
        None,
        {},
        {},
        (),
    )
    assert checked.cost_usd.is_finite() and 0 <= checked.cost_usd <= 1_000_000
    assert 0 <= checked.tokens <= MAX_TOKENS
