"""End to end through the engine: real repos, real DuckDB, real agent processes.

Each test declares a mission, commits it and drives it with `apply_now` (what `mc apply
--auto-approve` calls), then reads what happened through StateReader, the workspace files
and, where the command is what users see, the real `mc` CLI.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import pytest
from helpers.exec_repo import ExecRepo

pytestmark = pytest.mark.timeout(60)

DONE_AGENT = """
print("working on", TASK["task"])
result(status="done", output={"echo": TASK["prompt"], "attempt": ATTEMPT}, tokens=12)
"""


def transitions(repo: ExecRepo, task: str) -> list[tuple[str, str]]:
    return [
        (e.data["from"], e.data["to"])
        for e in repo.events("task.transition")
        if e.subject == f"Task/{task}"
    ]


def test_a_task_runs_and_is_done_with_its_output(repo: ExecRepo) -> None:
    repo.agent("echo", DONE_AGENT)
    repo.task("hello", agent="echo", prompt="say hi")
    repo.commit()

    done = repo.apply()

    assert done.result is not None and len(done.result.applied) == 3
    assert done.converged is not None and done.converged.summary["tasks"] == {"DONE": 1}
    row = repo.task_row("hello")
    assert (row.state, row.attempts, row.agent) == ("DONE", 1, "echo")
    assert row.output == {"echo": "say hi", "attempt": 1}
    [run] = repo.runs("hello")
    assert (run.state, run.status, run.exit_code, run.tokens) == ("ENDED", "done", 0, 12)
    assert run.pid and run.pid > 0 and run.ended_at is not None
    assert run.workspace == str(repo.mc_dir / "work" / "hello" / "1")
    task_json = json.loads((Path(run.workspace) / "task.json").read_text())
    assert (task_json["run_id"], task_json["task"], task_json["prompt"]) == (
        run.id,
        "hello",
        "say hi",
    )
    assert transitions(repo, "hello") == [
        ("INBOX", "ASSIGNED"),
        ("ASSIGNED", "IN_PROGRESS"),
        ("IN_PROGRESS", "DONE"),
    ]


def test_a_second_apply_redoes_nothing(repo: ExecRepo) -> None:
    repo.agent("echo", DONE_AGENT)
    repo.task("hello", agent="echo")
    repo.commit()
    repo.apply()

    again = repo.apply()

    assert again.result is None and not again.plan.actions
    assert len(repo.runs("hello")) == 1


RESEARCHER = """
(OUT / "facts.md").write_text("The sky is blue.\\n")
result(status="done", output="1 fact")
"""

WRITER = """
up = TASK["upstream"]["research"]
texts = [Path(d["file"]).read_text() for d in up["drops"]]
paths = [d["path"] for d in up["drops"]]
result(status="done", output={"from": up["output"], "paths": paths, "text": "".join(texts)})
"""


def test_a_dependency_chain_runs_in_order_and_hands_over_output_and_drops(
    repo: ExecRepo,
) -> None:
    repo.agent("researcher", RESEARCHER)
    repo.agent("writer", WRITER)
    repo.task("research", agent="researcher")
    repo.task("write", agent="writer", depends_on=["research"])
    repo.commit()

    repo.apply()

    assert repo.task_row("research").state == "DONE"
    write = repo.task_row("write")
    assert write.state == "DONE"
    assert write.output == {"from": "1 fact", "paths": ["facts.md"], "text": "The sky is blue.\n"}
    [up], [down] = repo.runs("research"), repo.runs("write")
    assert up.ended_at is not None and down.started_at >= up.ended_at
    handed = json.loads((Path(str(down.workspace)) / "task.json").read_text())
    [drop] = handed["upstream"]["research"]["drops"]
    assert Path(drop["file"]).parent.parent == repo.mc_dir / "drops"


FLAKY = """
if ATTEMPT < 3:
    print(f"transient failure {ATTEMPT}", file=sys.stderr)
    sys.exit(1)
result(status="done", output="third time lucky")
"""


def test_an_agent_failing_twice_then_succeeding_is_done_after_three_attempts(
    repo: ExecRepo,
) -> None:
    repo.agent("flaky", FLAKY)
    repo.task("wobbly", agent="flaky", retry={"max_attempts": 3, "jitter": 0})
    repo.commit()

    repo.apply()

    row = repo.task_row("wobbly")
    assert (row.state, row.attempts, row.output) == ("DONE", 3, "third time lucky")
    runs = repo.runs("wobbly")
    assert [r.attempt for r in runs] == [1, 2, 3]
    assert [r.status for r in runs] == ["retry", "retry", "done"]
    assert [r.error_class for r in runs] == ["temporary", "temporary", None]
    assert runs[0].error == "exited with code 1: transient failure 1"
    assert runs[1].error == "exited with code 1: transient failure 2"
    assert runs[2].error is None
    assert [r.exit_code for r in runs] == [1, 1, 0]
    # the backoff was waited out: 50ms, then 100ms (no jitter)
    first_end, second_end = runs[0].ended_at, runs[1].ended_at
    assert first_end is not None and second_end is not None
    assert (runs[1].started_at - first_end).total_seconds() >= 0.05
    assert (runs[2].started_at - second_end).total_seconds() >= 0.1
    assert [Path(str(r.workspace)).name for r in runs] == ["1", "2", "3"]


ALWAYS_FAILS = """
print("no luck", file=sys.stderr)
sys.exit(1)
"""


def test_an_agent_always_failing_is_failed_after_max_attempts(repo: ExecRepo) -> None:
    repo.agent("broken", ALWAYS_FAILS)
    repo.task("doomed", agent="broken", retry={"max_attempts": 3, "initial_interval": "100ms"})
    repo.commit()

    started = time.monotonic()
    repo.apply()

    assert time.monotonic() - started < 20  # a hang guard, not a measurement
    row = repo.task_row("doomed")
    assert (row.state, row.attempts) == ("FAILED", 3)
    assert row.reason == "failed after 3 attempts: exited with code 1: no luck"
    runs = repo.runs("doomed")
    assert len(runs) == 3
    assert all(r.status == "retry" and r.error == "exited with code 1: no luck" for r in runs)
    [failed] = repo.events("task.failed")
    assert failed.subject == "Task/doomed"


def test_a_result_saying_failed_fails_after_one_attempt(repo: ExecRepo) -> None:
    repo.agent("refuser", 'result(status="failed", error="the input file is missing")')
    repo.task("impossible", agent="refuser", retry={"max_attempts": 5})
    repo.commit()

    repo.apply()

    row = repo.task_row("impossible")
    assert (row.state, row.attempts) == ("FAILED", 1)
    assert row.reason == "failed: the input file is missing"
    [run] = repo.runs("impossible")
    assert (run.status, run.error_class) == ("failed", "permanent")


def test_a_result_saying_blocked_waits_for_a_person(repo: ExecRepo) -> None:
    repo.agent("asker", 'result(status="blocked", error="which customer?")')
    repo.task("unclear", agent="asker")
    repo.commit()

    repo.apply()

    row = repo.task_row("unclear")
    assert (row.state, row.reason) == ("BLOCKED", "agent: which customer?")


def test_approval_before_holds_dispatch_and_approval_after_holds_done(repo: ExecRepo) -> None:
    repo.agent("echo", DONE_AGENT)
    repo.task("gated", agent="echo", approval="before")
    repo.task("reviewed", agent="echo", approval="after")
    repo.commit()

    repo.apply()

    assert repo.task_row("gated").state == "NEEDS_APPROVAL"
    assert repo.runs("gated") == []
    reviewed = repo.task_row("reviewed")
    assert reviewed.state == "REVIEW"
    assert reviewed.output == {"echo": "", "attempt": 1}


COUNTER = """
if TASK["inputs"].get("forget"):
    result(status="done", output=0, memory={"agent": {"count": None}})  # null forgets
else:
    count = TASK["memory"]["agent"].get("count", 0) + 1
    memory = {"agent": {"count": count}, "task": {"seen": True}}
    result(status="done", output=count, memory=memory)
"""


def test_agent_memory_is_kept_and_handed_to_the_next_task(repo: ExecRepo) -> None:
    repo.agent("counter", COUNTER)
    repo.task("first", agent="counter")
    repo.task("second", agent="counter", depends_on=["first"])
    repo.commit()

    repo.apply()

    assert repo.task_row("first").output == 1
    assert repo.task_row("second").output == 2
    [run] = repo.runs("second")
    handed = json.loads((Path(str(run.workspace)) / "task.json").read_text())
    assert handed["memory"] == {"agent": {"count": 1}, "task": {}}
    with repo.state() as state:
        assert state.reader.memory("agent:") == {"agent:counter": {"count": 2}}
        assert state.reader.memory("task:first") == {"task:first": {"seen": True}}
    shown = repo.mc("memory", "counter")
    assert shown.returncode == 0, shown.stderr
    assert "count = 2" in shown.stdout
    unknown = repo.mc("memory", "nobody")
    assert unknown.returncode == 1
    assert "unknown agent 'nobody'" in unknown.stderr

    repo.task("third", agent="counter", depends_on=["second"], inputs={"forget": True})
    repo.commit("forget")
    repo.apply()

    with repo.state() as state:
        assert state.reader.memory("agent:") == {}
        assert state.reader.memory("task:") == {
            "task:first": {"seen": True},
            "task:second": {"seen": True},
        }


DROPPER = """
(OUT / "report.md").write_text("# Report\\n\\nAll good.\\n")
(OUT / "data").mkdir()
(OUT / "data" / "table.csv").write_text("a,b\\n1,2\\n")
result(status="done", output="dropped")
"""


def test_content_drops_are_recorded_stored_and_listed(repo: ExecRepo) -> None:
    repo.agent("dropper", DROPPER)
    repo.task("report", agent="dropper")
    repo.commit()

    repo.apply()

    expected = {
        "report.md": (b"# Report\n\nAll good.\n", "text/markdown"),
        "data/table.csv": (b"a,b\n1,2\n", "text/csv"),
    }
    with repo.state() as state:
        drops = {d.path: d for d in state.reader.drops("report")}
    [run] = repo.runs("report")
    assert set(drops) == set(expected)
    for path, (content, media_type) in expected.items():
        drop = drops[path]
        sha = hashlib.sha256(content).hexdigest()
        assert (drop.sha256, drop.size, drop.media_type, drop.run_id) == (
            sha,
            len(content),
            media_type,
            run.id,
        )
        stored = repo.mc_dir / "drops" / sha[:2] / sha
        assert stored.read_bytes() == content
    listed = repo.mc("drops", "report", "--json")
    assert listed.returncode == 0, listed.stderr
    rows = {r["path"]: r for r in json.loads(listed.stdout)}
    assert set(rows) == set(expected)
    for path, row in rows.items():
        assert Path(row["file"]).read_bytes() == expected[path][0]
    table = repo.mc("drops", "report")
    assert "report.md" in table.stdout and "data/table.csv" in table.stdout


HEARTBEATS = """
beat = Path(os.environ["MC_HEARTBEAT"])
first_run = Path(os.environ["MC_WORKSPACE"]).name == "1"
if TASK["task"] == "silent" and first_run:
    time.sleep(30)  # never beats: lost
for _ in range(8):  # outlives the 1 s heartbeat limit, beating all along
    beat.touch()
    time.sleep(0.2)
result(status="done", output="alive")
"""


def test_a_lost_heartbeat_is_abandoned_not_failed_and_beating_keeps_a_run_alive(
    repo: ExecRepo,
) -> None:
    repo.agent("beater", HEARTBEATS, heartbeat_timeout="1s", concurrency=2)
    repo.task("beats", agent="beater", retry={"max_attempts": 1})
    repo.task("silent", agent="beater", retry={"max_attempts": 1})
    repo.commit()

    repo.apply()

    beats = repo.task_row("beats")
    assert (beats.state, beats.attempts, beats.abandoned) == ("DONE", 1, 0)
    silent = repo.task_row("silent")
    assert (silent.state, silent.attempts, silent.abandoned) == ("DONE", 1, 1)
    lost, rerun = repo.runs("silent")
    assert (lost.status, lost.error_class) == ("abandoned", "abandoned")
    assert lost.error is not None and lost.error.startswith("no heartbeat within 1s")
    assert rerun.status == "done"


def test_a_failed_dependency_blocks_its_dependents(repo: ExecRepo) -> None:
    repo.agent("refuser", 'result(status="failed", error="no data")')
    repo.agent("echo", DONE_AGENT)
    repo.task("fetch", agent="refuser")
    repo.task("analyse", agent="echo", depends_on=["fetch"])
    repo.task("report", agent="echo", depends_on=["analyse"])
    repo.commit()

    repo.apply()

    assert repo.task_row("fetch").state == "FAILED"
    analyse = repo.task_row("analyse")
    assert (analyse.state, analyse.reason) == ("BLOCKED", "dependency: fetch is FAILED")
    assert repo.task_row("report").state == "INBOX"  # waits on a dependency that may recover
    assert repo.runs("analyse") == [] and repo.runs("report") == []


def test_a_paused_mission_or_agent_runs_nothing_until_resumed_in_git(repo: ExecRepo) -> None:
    repo.mission(mode="paused")
    repo.agent("echo", DONE_AGENT)
    repo.agent("resting", DONE_AGENT, status="paused")
    repo.task("a", agent="echo")
    repo.task("b", agent="resting")
    repo.commit()

    first = repo.apply()

    assert first.result is not None and len(first.result.applied) == 5
    # a paused mission holds everything quietly; a task whose only agent is paused is BLOCKED
    # with the reason, so `mc status` shows who is holding it
    assert [repo.task_row(n).state for n in ("a", "b")] == ["INBOX", "BLOCKED"]
    assert repo.task_row("b").reason == "paused: agent resting is paused"
    assert repo.runs("a") == [] and repo.runs("b") == []

    repo.mission(mode="normal")
    repo.commit("resume the mission")
    repo.apply()

    assert [repo.task_row(n).state for n in ("a", "b")] == ["DONE", "BLOCKED"]

    repo.agent("resting", DONE_AGENT, status="active")
    repo.commit("resume the agent")
    repo.apply()

    assert repo.task_row("b").state == "DONE"
