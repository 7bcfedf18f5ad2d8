"""Output adapters: turn what an exited agent left behind into a AgentReport; executors call them.

One function per agent protocol (`files`, `stdout`, `claude-code`), each reading only the
workspace and the exit code. How the exit code and result.json combine (files protocol):

- exit 0: result.json is trusted as written; missing -> failed (permanent).
- exit != 0 or killed by a signal: the run is a temporary failure (retry) unless result.json
  itself says `failed`, `blocked` or `retry`, which are deliberate statements and kept.
  A result.json saying `done` next to a crash is not believed. Unreadable result.json with a
  non-zero exit is also `retry` (the crash probably cut the write short).
- result.json that is too big, not a regular file, not JSON or not the schema, or outside the
  bounds of the one boundary (boundary.py: depth, numbers, Unicode, sizes), with exit 0:
  failed (permanent), with the reason.

The `claude-code` protocol checks the whole answer: done only for subtype `success`,
is_error false, a string `result` and exit 0; `error_during_execution` or is_error is a retry;
a limit (`error_max_turns`, `error_max_budget_usd`, ...) or any other subtype fails for good,
naming it. The `--verbose` array is read by its last result message.

Cost and tokens are kept from whatever the agent reported, whatever the status.
"""

from __future__ import annotations

import signal
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal, assert_never

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictStr,
    ValidationError,
    field_validator,
)

from .boundary import (
    MAX_COST_USD,
    MAX_TOKENS,
    Refused,
    bounded_cost,
    check_keys,
    check_memory,
    load_json,
    six_decimals,
)
from .nofollow import read_part
from .types import AgentProtocol, OutcomeStatus
from .workspace import WorkspacePaths, read_capped


@dataclass(frozen=True, slots=True)
class Finished:
    """What the executor knows about an exited agent process."""

    returncode: int  # negative: killed by that signal
    paths: WorkspacePaths
    stdout_kept: int  # content bytes in stdout.log
    stdout_truncated: bool
    result_cap_bytes: int


@dataclass(frozen=True, slots=True)
class AgentReport:
    """The agent's own account of the run, before the executor's overrides (kills, caps)."""

    status: OutcomeStatus
    error: str | None
    output: Any = None
    outputs: Mapping[str, Any] = field(default_factory=dict)
    cost_usd: Decimal = Decimal(0)
    tokens: int = 0
    memory: Mapping[str, Any] = field(default_factory=dict)


class ResultFile(BaseModel):
    """Schema of result.json; unknown keys are rejected so a typo cannot hide a cost."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    status: Literal["done", "retry", "failed", "blocked"]
    output: Any = None
    outputs: dict[str, Any] = Field(default_factory=dict)
    cost_usd: Decimal = Field(default=Decimal(0), ge=0, le=MAX_COST_USD, allow_inf_nan=False)
    tokens: int = Field(default=0, ge=0, le=MAX_TOKENS, strict=True)
    memory: dict[str, Any] = Field(default_factory=dict)
    error: str | None = None

    @field_validator("cost_usd")
    @classmethod
    def _six_decimals(cls, value: Decimal) -> Decimal:
        return six_decimals(value)


class _ClaudeUsage(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    input_tokens: int = Field(default=0, ge=0, le=MAX_TOKENS)
    output_tokens: int = Field(default=0, ge=0, le=MAX_TOKENS)


class ClaudeResult(BaseModel):
    """The part of Claude Code's result message (`claude -p ... --output-format json`) the
    runtime uses; judged whole by `claude_code_verdict` (subtype, is_error and result)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    type: Literal["result"]
    subtype: StrictStr | None = None
    is_error: StrictBool = False
    result: Any = None  # a string when the run succeeded; anything else is judged, not parsed
    total_cost_usd: Decimal = Field(default=Decimal(0), ge=0, le=MAX_COST_USD, allow_inf_nan=False)
    usage: _ClaudeUsage = Field(default_factory=_ClaudeUsage)

    @field_validator("total_cost_usd")
    @classmethod
    def _six_decimals(cls, value: Decimal) -> Decimal:
        return six_decimals(value)


def one_line(text: str, limit: int = 300) -> str:
    """Collapse whitespace so a message fits the one-line error contract."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


STDERR_TAIL_BYTES = 4096


def last_stderr_line(path: Path) -> str | None:
    """The last line the agent wrote to stderr (mc's own notes skipped), from the last few KiB
    only; a stderr.log the agent replaced by a link, FIFO or device is not read, and says so."""
    read = read_part(path, STDERR_TAIL_BYTES, tail=True)
    if read.kind != "ok":
        return read.problem(path.name, STDERR_TAIL_BYTES) if read.kind != "missing" else None
    lines = [ln.strip() for ln in read.data.decode("utf-8", errors="replace").splitlines()]
    lines = [ln for ln in lines if ln and not ln.startswith("[mc: ")]
    return one_line(lines[-1], 200) if lines else None


NOT_RUNNABLE = frozenset({126, 127})  # the shell's "cannot execute" / "command not found"


def exit_status(returncode: int) -> OutcomeStatus:
    """A failed exit is temporary, except a wrapper reporting its program is missing: retrying
    cannot install it."""
    return "failed" if returncode in NOT_RUNNABLE else "retry"


def describe_exit(returncode: int, paths: WorkspacePaths) -> str:
    """'exited with code 3: <last stderr line>' or 'killed by signal SIGSEGV: ...'."""
    if returncode < 0:
        try:
            what = f"killed by signal {signal.Signals(-returncode).name}"
        except ValueError:
            what = f"killed by signal {-returncode}"
    else:
        what = f"exited with code {returncode}"
    last = last_stderr_line(paths.stderr_log)
    return f"{what}: {last}" if last else what


def _validation_message(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "(top level)"
        parts.append(f"{where}: {err['msg']}")
    return "; ".join(parts)


def _read_result_file(fin: Finished) -> ResultFile | str | None:
    """The parsed result.json, a one-line problem, or None if the agent wrote none."""
    read = read_capped(fin.paths.result_json, fin.result_cap_bytes)
    if read.kind == "missing":
        return None
    if read.kind == "too_big":
        return f"result.json is {read.size} bytes; limit {fin.result_cap_bytes}"
    if read.kind == "not_regular":
        return "result.json is not a regular file (symlinks are not followed)"
    try:
        res = ResultFile.model_validate(load_json(read.data, "result.json"))
    except Refused as exc:
        return one_line(str(exc))
    except ValidationError as exc:
        return one_line(f"result.json does not match the schema: {_validation_message(exc)}")
    try:
        check_keys(res.outputs, "outputs")
        check_memory(res.memory, "memory")
    except Refused as exc:
        return one_line(f"result.json: {exc}")
    return res


def _from_result(res: ResultFile, status: OutcomeStatus, error: str | None) -> AgentReport:
    return AgentReport(
        status=status,
        error=None if error is None else one_line(error),
        output=res.output,
        outputs=res.outputs,
        cost_usd=res.cost_usd,
        tokens=res.tokens,
        memory=res.memory,
    )


def files_verdict(fin: Finished) -> AgentReport:
    """The `files` protocol: result.json, combined with the exit code (see module doc)."""
    res = _read_result_file(fin)
    ok = fin.returncode == 0
    if res is None:
        if ok:
            return AgentReport("failed", "agent exited 0 without writing result.json")
        return AgentReport(exit_status(fin.returncode), describe_exit(fin.returncode, fin.paths))
    if isinstance(res, str):
        if ok:
            return AgentReport("failed", res)
        return AgentReport("retry", f"{describe_exit(fin.returncode, fin.paths)}; {res}")
    if res.status == "done":
        if ok:
            return _from_result(res, "done", res.error)
        crash = describe_exit(fin.returncode, fin.paths)
        was = "was " if fin.returncode < 0 else ""
        return _from_result(res, "retry", f"result.json says done but the agent {was}{crash}")
    reason = res.error or (
        describe_exit(fin.returncode, fin.paths) if not ok else f"agent reported {res.status}"
    )
    return _from_result(res, res.status, one_line(reason))


def left_result(paths: WorkspacePaths, result_cap_bytes: int) -> AgentReport | None:
    """The `files` protocol for a run whose exit nobody saw (its reconciler died): a complete,
    valid result.json is the agent's deliberate statement and is kept as written; anything
    else (missing, cut short, not the schema) is None — the run counts as abandoned."""
    fin = Finished(0, paths, 0, False, result_cap_bytes)
    res = _read_result_file(fin)
    if res is None or isinstance(res, str):
        return None
    error = (
        res.error if res.status == "done" else one_line(res.error or f"agent reported {res.status}")
    )
    return _from_result(res, res.status, error)


def _stdout_text(fin: Finished) -> str | StdoutProblem:
    """The content the pump kept in stdout.log (at most stdout_kept bytes), re-read without
    following a link; a stdout.log the agent replaced by a link, FIFO or device (or removed
    after writing to it) is a problem, never read through."""
    read = read_part(fin.paths.stdout_log, fin.stdout_kept)
    if read.kind == "ok":
        return read.data.decode("utf-8", errors="replace")
    if read.kind == "missing" and fin.stdout_kept == 0:
        return ""
    return StdoutProblem(read.problem("stdout.log", fin.stdout_kept) or "stdout.log unreadable")


@dataclass(frozen=True, slots=True)
class StdoutProblem:
    """Why the agent's stdout cannot be its output (stdout.log is no longer mc's file)."""

    reason: str


def stdout_verdict(fin: Finished) -> AgentReport:
    """The `stdout` protocol: exit 0 means done and stdout (capped, stripped) is the output."""
    if fin.returncode != 0:
        return AgentReport(exit_status(fin.returncode), describe_exit(fin.returncode, fin.paths))
    text = _stdout_text(fin)
    if isinstance(text, StdoutProblem):
        return AgentReport("failed", text.reason)
    return AgentReport("done", None, output=text.strip())


@dataclass(frozen=True, slots=True)
class ClaudeProblem:
    """Why Claude Code's output is no answer, with the cost it reported if that much was
    readable (a reported total_cost_usd is kept whatever else is wrong)."""

    reason: str
    cost_usd: Decimal = Decimal(0)


# Subtypes that mean "try again": the session broke, not the task. A limit (error_max_turns,
# error_max_budget_usd, error_max_structured_output_retries) stops the same way next time.
CLAUDE_TRANSIENT_SUBTYPES = frozenset({"error_during_execution"})


def _claude_message(doc: Any) -> Any:
    """The result message: the document itself, or the last `result` element of the array
    `--verbose` prints (every message of the session, the result last)."""
    if not isinstance(doc, list):
        return doc
    found = [m for m in doc if isinstance(m, dict) and m.get("type") == "result"]
    if not found:
        raise Refused(f"claude-code output is an array of {len(doc)} messages without a result")
    return found[-1]


def _reported_cost(message: Any) -> Decimal:
    """total_cost_usd of an output that failed validation otherwise, when it is in bounds."""
    raw = message.get("total_cost_usd") if isinstance(message, dict) else None
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        return Decimal(0)
    try:
        return bounded_cost(Decimal(str(raw)), "total_cost_usd")
    except (Refused, ArithmeticError):
        return Decimal(0)


def _parse_claude_text(candidate: str) -> ClaudeResult | ClaudeProblem:
    message: Any = None
    try:
        message = _claude_message(load_json(candidate, "claude-code output"))
        parsed = ClaudeResult.model_validate(message)
        if parsed.usage.input_tokens + parsed.usage.output_tokens > MAX_TOKENS:
            raise Refused(f"claude-code output: usage: more than {MAX_TOKENS} tokens")
        return parsed
    except ValidationError as exc:
        problem = f"claude-code output does not match: {_validation_message(exc)}"
        return ClaudeProblem(one_line(problem), _reported_cost(message))
    except Refused as exc:
        return ClaudeProblem(one_line(str(exc)), _reported_cost(message))


def _parse_claude(fin: Finished) -> ClaudeResult | ClaudeProblem:
    if fin.stdout_truncated:
        return ClaudeProblem(
            f"claude-code output is longer than the log cap ({fin.stdout_kept} bytes)"
        )
    text = _stdout_text(fin)
    if isinstance(text, StdoutProblem):
        return ClaudeProblem(text.reason)
    text = text.strip()
    # The whole text (json, or --verbose's array), then its last line (stream-json, or json
    # after a line of noise).
    candidates = [c for c in [text, *text.splitlines()[-1:]] if c]
    found: ClaudeResult | ClaudeProblem = ClaudeProblem("claude-code printed nothing")
    for candidate in candidates:
        found = _parse_claude_text(candidate)
        if isinstance(found, ClaudeResult):
            return found
    return found


def _claude_judgement(parsed: ClaudeResult) -> tuple[OutcomeStatus, str] | None:
    """Why a well-formed result message is not a success (status, reason), or None: done
    needs subtype `success`, is_error false and a string result."""
    detail = parsed.result if isinstance(parsed.result, str) and parsed.result else None
    subtype = parsed.subtype
    if subtype is None:
        return "failed", "claude-code output has no subtype (only `success` counts as done)"
    if subtype != "success":
        if subtype in CLAUDE_TRANSIENT_SUBTYPES:
            return "retry", f"claude-code reported {subtype}: {detail or 'no detail'}"
        limit = " (a limit: another attempt would stop the same way)"
        why = limit if subtype.startswith("error_max") else ""
        return "failed", f"claude-code stopped with subtype {subtype}{why}" + (
            f": {detail}" if detail else ""
        )
    if parsed.is_error:
        return "retry", f"claude-code reported an error: {detail or 'no detail'}"
    if not isinstance(parsed.result, str):
        what = "missing" if parsed.result is None else f"a {type(parsed.result).__name__}"
        return "failed", f"claude-code output: result is {what}; a success needs a string result"
    return None


def claude_code_verdict(fin: Finished) -> AgentReport:
    """The `claude-code` protocol: Claude Code's result message on stdout (`json`, the
    `--verbose` array or `stream-json`). Done only for subtype `success`, is_error false, a
    string result and exit 0; a transient subtype or is_error is a retry; a limit (max turns,
    max budget) or any other subtype fails naming it. A reported cost is always kept."""
    parsed = _parse_claude(fin)
    if isinstance(parsed, ClaudeProblem):
        if fin.returncode == 0:
            return AgentReport("failed", parsed.reason, cost_usd=parsed.cost_usd)
        status, error = exit_status(fin.returncode), describe_exit(fin.returncode, fin.paths)
        return AgentReport(status, error, cost_usd=parsed.cost_usd)
    cost = parsed.total_cost_usd
    tokens = parsed.usage.input_tokens + parsed.usage.output_tokens
    judged = _claude_judgement(parsed)
    if judged is not None:
        return AgentReport(judged[0], one_line(judged[1]), cost_usd=cost, tokens=tokens)
    if fin.returncode != 0:
        error = describe_exit(fin.returncode, fin.paths)
        return AgentReport("retry", error, cost_usd=cost, tokens=tokens)
    return AgentReport("done", None, output=parsed.result, cost_usd=cost, tokens=tokens)


def interpret(protocol: AgentProtocol, fin: Finished) -> AgentReport:
    """Dispatch to the adapter of the agent's protocol."""
    match protocol:
        case "files":
            return files_verdict(fin)
        case "stdout":
            return stdout_verdict(fin)
        case "claude-code":
            return claude_code_verdict(fin)
        case _:
            assert_never(protocol)
