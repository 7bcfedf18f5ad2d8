"""How the exit code and result.json combine in the `files` adapter: a table that is the spec."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reconciler.runtime.adapters import Finished, files_verdict
from reconciler.runtime.workspace import WorkspacePaths

ABSENT = None

CASES = [
    # (exit code, result.json content, expected status, expected error)
    (0, {"status": "done", "output": 1}, "done", None),
    (0, {"status": "retry", "error": "busy"}, "retry", "busy"),
    (0, {"status": "failed", "error": "bad input"}, "failed", "bad input"),
    (0, {"status": "blocked", "error": "need approval"}, "blocked", "need approval"),
    (0, ABSENT, "failed", "agent exited 0 without writing result.json"),
    (0, "{not json", "failed", "result.json is not valid JSON: "),
    (0, {"status": "finished"}, "failed", "result.json does not match the schema: status: "),
    (0, ["done"], "failed", "result.json does not match the schema: (top level): "),
    (4, ABSENT, "retry", "exited with code 4"),
    (4, {"status": "done"}, "retry", "result.json says done but the agent exited with code 4"),
    (4, {"status": "failed", "error": "bad input"}, "failed", "bad input"),
    (4, {"status": "failed"}, "failed", "exited with code 4"),
    (4, {"status": "blocked", "error": "need approval"}, "blocked", "need approval"),
    (4, "{not json", "retry", "exited with code 4; result.json is not valid JSON: "),
    (-11, ABSENT, "retry", "killed by signal SIGSEGV"),
    (-9, {"status": "done"}, "retry", "result.json says done but the agent was killed by signal"),
]


@pytest.mark.parametrize(("code", "result", "status", "error"), CASES)
def test_exit_code_and_result_json(
    tmp_path: Path, code: int, result: object, status: str, error: str | None
) -> None:
    paths = WorkspacePaths(tmp_path)
    (tmp_path / "stderr.log").write_text("")
    if isinstance(result, str):
        paths.result_json.write_text(result)
    elif result is not ABSENT:
        paths.result_json.write_text(json.dumps(result))
    fin = Finished(code, paths, stdout_kept=0, stdout_truncated=False, result_cap_bytes=1000)

    verdict = files_verdict(fin)

    assert verdict.status == status
    if error is None:
        assert verdict.error is None
    else:
        assert verdict.error is not None and verdict.error.startswith(error)
