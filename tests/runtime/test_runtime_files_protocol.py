"""The `files` protocol end to end: result.json, drops, and how the exit code combines with it."""

from __future__ import annotations

import hashlib
import json
import os
from decimal import Decimal
from pathlib import Path

import pytest
from runtime_harness import Agents, run_one

from reconciler.runtime.local import LocalExecutor

pytestmark = pytest.mark.timeout(30)

WRITE_RESULT = """
import json, os
def result(**fields):
    with open(os.environ["MC_RESULT_JSON"], "w") as f:
        json.dump(fields, f)
"""


def test_success_reports_output_cost_memory_and_hashed_drops(
    executor: LocalExecutor, agents: Agents
) -> None:
    req = agents.request(
        WRITE_RESULT
        + """
task = json.load(open(os.environ["MC_TASK_JSON"]))
out = os.environ["MC_OUT_DIR"]
os.makedirs(os.path.join(out, "notes"))
open(os.path.join(out, "report.md"), "w").write("# Report\\n")
open(os.path.join(out, "notes", "data.bin"), "wb").write(bytes(range(256)))
print("working on", task["prompt"])
result(status="done", output={"summary": task["prompt"]}, outputs={"n": 2},
       cost_usd=0.125, tokens=1234, memory={"seen": True})
"""
    )
    outcome = run_one(executor, req)

    assert outcome.status == "done", outcome.error
    assert outcome.error is None
    assert outcome.exit_code == 0
    assert outcome.output == {"summary": "do it"}
    assert outcome.outputs == {"n": 2}
    assert outcome.cost_usd == Decimal("0.125")
    assert outcome.tokens == 1234
    assert outcome.memory == {"seen": True}
    assert outcome.started_at <= outcome.ended_at
    by_path = {d.path: d for d in outcome.drops}
    assert sorted(by_path) == ["notes/data.bin", "report.md"]
    report = by_path["report.md"]
    assert report.sha256 == hashlib.sha256(b"# Report\n").hexdigest()
    assert report.size == 9
    assert report.media_type == "text/markdown"
    # Stored under its hash in the content-addressed store beside the workspaces.
    assert report.local_path == agents.root / ".mc" / "drops" / report.sha256[:2] / report.sha256
    assert report.local_path.read_bytes() == b"# Report\n"
    assert by_path["notes/data.bin"].sha256 == hashlib.sha256(bytes(range(256))).hexdigest()
    assert by_path["notes/data.bin"].media_type == "application/octet-stream"
    assert outcome.stdout_path is not None
    assert outcome.stdout_path.read_text() == "working on do it\n"
    assert json.loads((req.workspace / "task.json").read_text()) == dict(req.task_json)


def test_agent_sees_the_mc_environment(executor: LocalExecutor, agents: Agents) -> None:
    req = agents.request(
        WRITE_RESULT
        + """
keys = ["MC_RUN_ID", "MC_TASK", "MC_ATTEMPT", "MC_WORKSPACE", "MC_TASK_JSON",
        "MC_RESULT_JSON", "MC_OUT_DIR", "MC_HEARTBEAT", "MC_COST_JSON"]
result(status="done", output={k: os.environ[k] for k in keys} | {"cwd": os.getcwd()})
""",
        attempt=3,
    )
    out = run_one(executor, req).output
    ws = str(req.workspace)
    assert out["MC_RUN_ID"] == req.run_id
    assert out["MC_TASK"] == "demo"
    assert out["MC_ATTEMPT"] == "3"
    assert out["MC_WORKSPACE"] == ws == out["cwd"]
    assert out["MC_TASK_JSON"] == f"{ws}/task.json"
    assert out["MC_RESULT_JSON"] == f"{ws}/result.json"
    assert out["MC_OUT_DIR"] == f"{ws}/out"
    assert out["MC_HEARTBEAT"] == f"{ws}/heartbeat"
    assert out["MC_COST_JSON"] == f"{ws}/cost.json"


def test_symlinks_under_out_are_not_drops(executor: LocalExecutor, agents: Agents) -> None:
    req = agents.request(
        WRITE_RESULT
        + """
out = os.environ["MC_OUT_DIR"]
open(os.path.join(out, "real.txt"), "w").write("x")
os.symlink("/etc/passwd", os.path.join(out, "passwd"))
os.symlink("/etc", os.path.join(out, "etc"))
result(status="done")
"""
    )
    outcome = run_one(executor, req)
    assert [d.path for d in outcome.drops] == ["real.txt"]


@pytest.mark.parametrize(
    ("body", "status", "error_part"),
    [
        ('result(status="failed", error="the input is malformed")', "failed", "malformed"),
        ('result(status="retry", error="rate limited")', "retry", "rate limited"),
        ('result(status="blocked", error="need a password")', "blocked", "need a password"),
        ('result(status="failed")', "failed", "agent reported failed"),
    ],
)
def test_agent_reported_status_is_kept(
    executor: LocalExecutor, agents: Agents, body: str, status: str, error_part: str
) -> None:
    outcome = run_one(executor, agents.request(WRITE_RESULT + body))
    assert outcome.status == status
    assert outcome.error is not None and error_part in outcome.error


def test_exit_zero_without_result_is_a_permanent_failure(
    executor: LocalExecutor, agents: Agents
) -> None:
    outcome = run_one(executor, agents.request("print('forgot the result')"))
    assert outcome.status == "failed"
    assert outcome.error == "agent exited 0 without writing result.json"


def test_nonzero_exit_without_result_is_retry_with_last_stderr_line(
    executor: LocalExecutor, agents: Agents
) -> None:
    req = agents.request(
        "import sys\nprint('first', file=sys.stderr)\nprint('disk quota hit', file=sys.stderr)\n"
        "sys.exit(3)"
    )
    outcome = run_one(executor, req)
    assert outcome.status == "retry"
    assert outcome.exit_code == 3
    assert outcome.error == "exited with code 3: disk quota hit"


def test_nonzero_exit_overrides_a_done_result(executor: LocalExecutor, agents: Agents) -> None:
    req = agents.request(WRITE_RESULT + 'result(status="done", cost_usd=0.5)\nraise SystemExit(2)')
    outcome = run_one(executor, req)
    assert outcome.status == "retry"
    assert outcome.error == "result.json says done but the agent exited with code 2"
    assert outcome.cost_usd == Decimal("0.5")  # the spend is recorded anyway


def test_garbage_result_is_a_permanent_failure(executor: LocalExecutor, agents: Agents) -> None:
    req = agents.request("import os\nopen(os.environ['MC_RESULT_JSON'], 'w').write('{oops')")
    outcome = run_one(executor, req)
    assert outcome.status == "failed"
    assert outcome.error is not None
    assert outcome.error.startswith("result.json is not valid JSON: ")
    assert "\n" not in outcome.error


def test_result_with_wrong_schema_names_the_field(executor: LocalExecutor, agents: Agents) -> None:
    req = agents.request(WRITE_RESULT + 'result(status="done", cost=3, tokens=-1)')
    outcome = run_one(executor, req)
    assert outcome.status == "failed"
    assert outcome.error is not None
    assert "result.json does not match the schema" in outcome.error
    assert "cost:" in outcome.error  # the field; the wording after it is pydantic's
    assert "tokens:" in outcome.error


def test_huge_result_is_rejected_by_size_without_reading_it(
    executor: LocalExecutor, agents: Agents
) -> None:
    req = agents.request(
        "import os\nwith open(os.environ['MC_RESULT_JSON'], 'wb') as f:\n"
        "    f.truncate(100 * 1024 * 1024)\n"
    )
    outcome = run_one(executor, req)
    assert outcome.status == "failed"
    assert outcome.error == "result.json is 104857600 bytes; limit 10485760"


def test_result_symlink_is_not_followed(executor: LocalExecutor, agents: Agents) -> None:
    secret = agents.root / "outside.json"
    secret.write_text(json.dumps({"status": "done", "output": "stolen"}))
    req = agents.request(f"import os\nos.symlink({str(secret)!r}, os.environ['MC_RESULT_JSON'])")
    outcome = run_one(executor, req)
    assert outcome.status == "failed"
    assert outcome.output is None
    assert outcome.error == "result.json is not a regular file (symlinks are not followed)"


def test_relaunching_an_attempt_moves_the_old_workspace_aside(
    executor: LocalExecutor, agents: Agents
) -> None:
    first = agents.request(WRITE_RESULT + 'result(status="done", output="old")', run_id="a")
    assert run_one(executor, first).output == "old"
    again = agents.request("print('no result this time')", run_id="b", workspace=first.workspace)
    outcome = run_one(executor, again)
    assert outcome.status == "failed"  # the old result.json was not mistaken for this run's
    aside = first.workspace.with_name(first.workspace.name + ".stale-1")
    assert json.loads((aside / "result.json").read_text())["output"] == "old"
    assert not os.path.exists(first.workspace / "result.json")


def test_relative_workspace_is_made_absolute_for_the_agent(
    executor: LocalExecutor, agents: Agents, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(agents.root)
    req = agents.request(
        WRITE_RESULT + 'result(status="done", output=os.environ["MC_RESULT_JSON"])',
        workspace=Path(".mc/work/demo/1"),
    )
    outcome = run_one(executor, req)
    assert outcome.status == "done", outcome.error
    assert outcome.output == str(agents.root / ".mc/work/demo/1/result.json")
    assert outcome.stdout_path == agents.root / ".mc/work/demo/1/stdout.log"
