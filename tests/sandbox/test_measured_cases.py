"""Issue 14's measured cases, as measured, through the real `mc apply` and real sandboxed
agents: each poison pill (case 1) is a permanent failure of its run whose reason names the
field and the limit, and the Claude Code answer that stopped at its turn limit (case 6) fails
for good with the subtype named, its cost kept, and its dependent never gets a null output.
One mission holds them all; the run beside them is recorded as usual, and the next apply and
`mc status` work."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
from helpers.exec_repo import ExecRepo

pytestmark = pytest.mark.timeout(180)

RESULT = 'Path(os.environ["MC_RESULT_JSON"])'
COST = 'Path(os.environ["MC_COST_JSON"])'

# task: (agent code, words the failed run's error must hold: the field and the limit)
PILLS = {
    "surrogate": (  # written with Python's json.dump, as measured
        f'json.dump({{"status": "done", "output": "\\ud800"}}, {RESULT}.open("w"))',
        ["result.json", "output", "not valid Unicode"],
    ),
    "tokens": (
        f'{RESULT}.write_text(\'{{"status": "done", "tokens": 123456789012345678901234567890}}\')',
        ["result.json", "tokens", "out of range (64 bits: ±9223372036854775807)"],
    ),
    "deep": (
        f'{RESULT}.write_bytes(b"[" * 200_000 + b"]" * 200_000)',
        ["result.json", "nested deeper than 64 levels"],
    ),
    "cost-huge": (
        f"{COST}.write_text('{{\"cost_usd\": 1' + '0' * 40 + '}}')\n"
        'result(status="done", output="ok")',
        ["cost.json: cost_usd", "from 0 to 1000000"],
    ),
    "bad-name": (
        'open(os.path.join(os.fsencode(OUT), b"\\xff\\xfe.txt"), "wb").write(b"x")\n'
        'result(status="done", output="dropped")',
        ["out/\\xff\\xfe.txt", "not valid UTF-8"],
    ),
    "control-name": (
        '(OUT / "a\\x1b[31m.txt").write_text("x")\nresult(status="done", output="dropped")',
        ["out/a\\x1b[31m.txt", "control character"],
    ),
}
MAX_TURNS = {
    "type": "result",
    "subtype": "error_max_turns",
    "is_error": False,
    "total_cost_usd": 0.01,
}


def test_the_measured_cases_fail_their_runs_for_good_naming_field_and_limit(
    tmp_path: Path,
) -> None:
    repo = ExecRepo(tmp_path / "mission")
    for name, (code, _) in PILLS.items():
        repo.agent(name, code + "\n")
        repo.task(name, agent=name)
    repo.agent("claude", f"print({json.dumps(json.dumps(MAX_TURNS))})\n", protocol="claude-code")
    repo.task("claude", agent="claude")
    repo.agent("reader", 'result(status="done", output=repr(TASK["upstream"]))\n')
    repo.task("after-claude", agent="reader", depends_on=["claude"])
    repo.agent("good", 'result(status="done", output="fine", cost_usd=0.5)\n')
    repo.task("good", agent="good")
    repo.commit("the measured cases")

    applied = repo.mc("apply", "--auto-approve")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert "internal error" not in applied.stdout + applied.stderr

    for name, (_, words) in PILLS.items():
        task, runs = repo.task_row(name), repo.runs(name)
        assert (task.state, task.output) == ("FAILED", None), (name, task)
        assert len(runs) == 1 and runs[0].status == "failed", (name, runs)
        assert runs[0].error_class == "permanent", (name, runs[0])
        error = str(runs[0].error)
        assert "\n" not in error
        for word in words:
            assert word in error, (name, error)

    claude = repo.runs("claude")
    assert [(r.status, r.error_class) for r in claude] == [("failed", "permanent")]
    assert "error_max_turns" in str(claude[0].error)
    assert claude[0].cost_usd == Decimal("0.01")  # what it spent is kept
    assert repo.task_row("claude").output is None
    assert repo.task_row("after-claude").state == "BLOCKED"  # never handed a null output
    assert repo.runs("after-claude") == []
    assert repo.task_row("good").state == "DONE"

    again = repo.mc("apply", "--auto-approve")
    assert again.returncode == 0, again.stdout + again.stderr
    status = repo.mc("status")
    assert status.returncode == 0 and "internal error" not in status.stdout + status.stderr
