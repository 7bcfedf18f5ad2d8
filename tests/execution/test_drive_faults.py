"""Agents that misbehave, all in one `apply`: each ends classified with a clear error, while a
healthy task driven in the same apply still completes DONE."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from helpers.exec_repo import ExecRepo

from reconciler.commands.plan_apply import Applied

pytestmark = pytest.mark.timeout(60)


@dataclass(frozen=True)
class Fault:
    task: str
    agent: dict[str, Any]  # code=… or command=…, plus other agent spec fields
    max_attempts: int
    reason: str  # how the task's reason starts (library wording after it may vary)
    status: str  # of its last run
    error_class: str
    exit_code: int | None


NO_CORE = "import resource; resource.setrlimit(resource.RLIMIT_CORE, (0, 0))\n"

FAULTS = [
    Fault(
        "missing-binary",
        {"command": ["/nonexistent/mc-agent-binary", "--go"]},
        3,
        "failed: agent command not found: /nonexistent/mc-agent-binary",
        "failed",
        "permanent",
        None,
    ),
    Fault(
        "crash",
        {
            "code": NO_CORE + "print('about to crash', file=sys.stderr, flush=True)\n"
            "os.kill(os.getpid(), signal.SIGSEGV)\n"
        },
        2,
        "failed after 2 attempts: killed by signal SIGSEGV: about to crash",
        "retry",
        "temporary",
        -11,
    ),
    Fault(
        "garbage-result",
        {"code": "Path(os.environ['MC_RESULT_JSON']).write_text('{not json')\n"},
        3,
        "failed: result.json is not valid JSON: ",
        "failed",
        "permanent",
        0,
    ),
    Fault(
        "wrong-schema",
        {"code": "result(status='finished', costs=3)\n"},  # costs: an unknown key
        3,
        "failed: result.json does not match the schema: status: ",
        "failed",
        "permanent",
        0,
    ),
    Fault(
        "no-result",
        {"code": "print('forgot the result')\n"},
        3,
        "failed: agent exited 0 without writing result.json",
        "failed",
        "permanent",
        0,
    ),
    Fault(
        "hang",
        {"code": "time.sleep(60)\n", "timeout": "1s"},
        1,
        "failed after 1 attempts: timed out after 1s (SIGTERM)",
        "retry",
        "temporary",
        -15,
    ),
    Fault(
        "stubborn-hang",
        {
            "code": "signal.signal(signal.SIGTERM, signal.SIG_IGN)\ntime.sleep(60)\n",
            "timeout": "1s",
        },
        1,
        "failed after 1 attempts: timed out after 1s (SIGTERM, then SIGKILL)",
        "retry",
        "temporary",
        -9,
    ),
]
GOOD = 'print("all fine")\nresult(status="done", output="healthy")\n'


@dataclass(frozen=True)
class Driven:
    repo: ExecRepo
    applied: Applied
    seconds: float


@pytest.fixture(scope="module")
def driven(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Driven]:
    repo = ExecRepo(tmp_path_factory.mktemp("faults") / "mission")
    for fault in FAULTS:
        spec = dict(fault.agent)
        repo.agent(fault.task, spec.pop("code", None), **spec)
        repo.task(fault.task, agent=fault.task, retry={"max_attempts": fault.max_attempts})
    repo.agent("healthy", GOOD)
    repo.task("healthy-work", agent="healthy")
    repo.commit()
    with pytest.MonkeyPatch.context() as mp:  # the function-scoped isolation is not up yet
        for name in ("MC_STATE", "MC_DEBUG", "GIT_DIR", "GIT_WORK_TREE"):
            mp.delenv(name, raising=False)
        started = time.monotonic()
        applied = repo.apply()
        seconds = time.monotonic() - started
    yield Driven(repo, applied, seconds)


@pytest.mark.parametrize("fault", FAULTS, ids=lambda f: f.task)
def test_a_fault_ends_classified_with_a_clear_error(driven: Driven, fault: Fault) -> None:
    row = driven.repo.task_row(fault.task)
    runs = driven.repo.runs(fault.task)

    assert row.state == "FAILED"
    assert row.reason is not None and row.reason.startswith(fault.reason)
    assert row.attempts == fault.max_attempts if fault.status == "retry" else 1
    assert len(runs) == row.attempts
    last = runs[-1]
    assert (last.state, last.status, last.error_class) == ("ENDED", fault.status, fault.error_class)
    assert last.exit_code == fault.exit_code
    assert last.error is not None and "\n" not in last.error
    assert row.reason.endswith(last.error)


def test_schema_errors_name_every_offending_field(driven: Driven) -> None:
    reason = driven.repo.task_row("wrong-schema").reason
    assert reason is not None and "status:" in reason and "costs:" in reason


def test_the_healthy_task_in_the_same_apply_is_done(driven: Driven) -> None:
    row = driven.repo.task_row("healthy-work")
    assert (row.state, row.output, row.attempts) == ("DONE", "healthy", 1)
    assert driven.applied.converged is not None
    summary = driven.applied.converged.summary
    assert summary["tasks"] == {"DONE": 1, "FAILED": len(FAULTS)}
    assert summary["running"] == 0


def test_faults_never_ran_a_missing_binary_and_left_no_process(driven: Driven) -> None:
    [never] = driven.repo.runs("missing-binary")
    assert never.pid is None  # nothing was started, so nothing can be left running
    for fault in FAULTS[1:]:
        for run in driven.repo.runs(fault.task):
            assert run.pid is not None
            assert not Path(f"/proc/{run.pid}").exists() or _is_zombie(run.pid)


def test_the_hung_agents_did_not_hold_up_the_apply(driven: Driven) -> None:
    assert driven.seconds < 30  # a hang guard: the hung agents sleep 60 s


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True
