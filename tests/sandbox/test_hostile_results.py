"""Hostile results (DESIGN §9, the one boundary): what a real agent returns through the real
`mc apply` — result.json, cost.json, out/ names — that the state cannot hold (nesting deep enough
to overflow a recursive parser, numbers past DECIMAL(18, 6) or 128 bits, undecodable names, lone
surrogates) fails that run with a reason naming the problem. `mc apply` ends normally, the run
beside it is recorded as usual, and the next `mc apply` and `mc status` work — also after
`mc apply` was killed while such an agent ran (crash recovery reads at the same boundary)."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
from helpers.exec_repo import ExecRepo, wait_for
from helpers.mc import reap
from helpers.sandboxed import kill_marked_run, run_processes

pytestmark = pytest.mark.timeout(120)

RESULT = 'Path(os.environ["MC_RESULT_JSON"])'
COST = 'Path(os.environ["MC_COST_JSON"])'

# (what the agent does, words the failed run's error must hold)
HOSTILE = {
    "deep-result": (f'{RESULT}.write_bytes(b"[" * 100_000)', ["result.json", "nested deeper"]),
    "deep-cost": (
        f'{COST}.write_bytes(b"[" * 30_000)\nresult(status="done", output="fine")',
        ["cost.json", "nested deeper"],
    ),
    "huge-cost": (
        f'{COST}.write_text(\'{{"cost_usd": 1e999999}}\')\nresult(status="done", output="x")',
        ["cost.json: cost_usd", "0 to 1000000"],
    ),
    "huge-tokens": (
        f"{RESULT}.write_text('{{\"status\": \"done\", \"tokens\": ' + '9' * 4000 + '}}')",
        ["result.json", "tokens"],
    ),
    "bad-name": (
        'open(os.path.join(os.fsencode(OUT), b"\\xff\\xfe.txt"), "wb").write(b"x")\n'
        'result(status="done", output="dropped")',
        ["out/\\xff\\xfe.txt", "not valid UTF-8"],
    ),
    "surrogate": (
        f'{RESULT}.write_text(\'{{"status": "done", "output": "\\\\ud800x"}}\')',
        ["result.json", "output", "not valid Unicode"],
    ),
}


@pytest.fixture
def repo(tmp_path: Path) -> ExecRepo:
    repo = ExecRepo(tmp_path / "mission")
    repo.agent("good", 'result(status="done", output="fine", cost_usd=0.5, tokens=3)\n')
    repo.task("good", agent="good")
    return repo


def hostile(repo: ExecRepo, name: str, code: str) -> None:
    repo.agent(name, code + "\n")
    repo.task(name, agent=name)


def assert_mc_still_works(repo: ExecRepo) -> None:
    again = repo.mc("apply", "--auto-approve")
    assert again.returncode == 0, again.stdout + again.stderr
    status = repo.mc("status")
    assert status.returncode == 0, status.stdout + status.stderr
    assert "internal error" not in status.stdout + status.stderr


def assert_failed(repo: ExecRepo, task: str, words: list[str]) -> None:
    row = repo.task_row(task)
    run = repo.runs(task)[-1]
    assert (row.state, run.state, run.status) == ("FAILED", "ENDED", "failed"), (row, run)
    error = str(run.error or "")
    assert "\n" not in error
    for word in words:
        assert word in error, error
    assert run.error_class == "permanent", run
    assert row.output is None


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_a_result_the_state_cannot_hold_fails_only_its_run(repo: ExecRepo, name: str) -> None:
    code, words = HOSTILE[name]
    hostile(repo, name, code)
    repo.commit("hostile results")

    first = repo.mc("apply", "--auto-approve")

    assert first.returncode == 0, first.stdout + first.stderr
    assert "internal error" not in first.stdout + first.stderr
    assert_failed(repo, name, words)
    good = repo.task_row("good")
    assert (good.state, good.output) == ("DONE", "fine")
    assert [r.cost_usd for r in repo.runs("good")] == [pytest.approx(0.5)]
    assert_mc_still_works(repo)
    assert repo.task_row(name).state == "FAILED"


# --- crash recovery ---------------------------------------------------------------------------


def _kill_mc_while_it_runs(repo: ExecRepo, marker: Path) -> None:
    """`mc apply` SIGKILLed once the agent wrote `marker` (its sandbox dies with it)."""
    first = repo.mc_background("apply", "--auto-approve")
    try:
        wait_for(marker.exists, 30, "the agent to write its marker")
        run_id = marker.read_text().split()[1]
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        wait_for(lambda: not run_processes(run_id), 10, "the sandbox to die with its mc")
    finally:
        reap(first)
        kill_marked_run(marker)


LINGER = """
mark({marker!r})
if not Path({again!r}).exists():
    Path({again!r}).write_text("ran")
    time.sleep(60)
"""


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("deep-cost", ["cost.json", "nested deeper"]),
        ("huge-cost", ["cost.json: cost_usd"]),
        ("bad-name", ["not valid UTF-8"]),
    ],
)
def test_recovery_fails_a_run_that_left_a_result_with_hostile_extras(
    repo: ExecRepo, name: str, words: list[str]
) -> None:
    """A valid result.json next to a hostile cost.json or drop: recovery records the run
    (once, not run again) as failed, at the same boundary as a watched run."""
    marker, again = repo.scratch / f"{name}.pid", repo.scratch / f"{name}.again"
    code, _ = HOSTILE[name]
    hostile(repo, name, code + LINGER.format(marker=str(marker), again=str(again)))
    repo.commit("hostile results")

    _kill_mc_while_it_runs(repo, marker)
    [left] = repo.runs(name)
    assert left.ended_at is None

    second = repo.mc("apply", "--auto-approve")

    assert second.returncode == 0, second.stdout + second.stderr
    [run] = repo.runs(name)
    assert run.id == left.id
    assert_failed(repo, name, words)
    assert repo.task_row("good").state == "DONE"
    assert_mc_still_works(repo)


@pytest.mark.parametrize("name", ["deep-result", "surrogate", "huge-tokens"])
def test_recovery_does_not_crash_on_a_hostile_result_json(repo: ExecRepo, name: str) -> None:
    """A result.json the boundary refuses is no result: recovery abandons the run (it runs
    again) instead of crashing every later `mc apply`; the next run fails with the reason."""
    marker, again = repo.scratch / f"{name}.pid", repo.scratch / f"{name}.again"
    code, words = HOSTILE[name]
    hostile(repo, name, code + LINGER.format(marker=str(marker), again=str(again)))
    repo.commit("hostile results")

    _kill_mc_while_it_runs(repo, marker)

    second = repo.mc("apply", "--auto-approve")

    assert second.returncode == 0, second.stdout + second.stderr
    assert "internal error" not in second.stdout + second.stderr
    first_run, *later = repo.runs(name)
    assert (first_run.state, first_run.status) == ("ENDED", "abandoned"), first_run
    assert later, "the abandoned run ran again"
    assert_failed(repo, name, words)
    assert_mc_still_works(repo)
