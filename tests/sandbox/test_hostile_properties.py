"""Property tests through the real engine (issue 14, item 1): hypothesis generates hostile
outputs — result.json, cost.json, stdout as `stdout` and `claude-code` agents print it, and out/
trees — and real sandboxed agents write exactly those bytes in a real mission applied with
`mc apply` (in-process, so an exception would surface here). Asserted: nothing raises, every
run ends with a recorded status (and a reason unless done) in the real DuckDB state, and the
next apply runs a new task to DONE.

Fewer examples than the unit-level properties (tests/runtime/test_runtime_boundary_properties.py):
each costs a git repo and a handful of agent processes."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers.exec_repo import ExecRepo
from helpers.hostile import (
    CLAUDE_BYTES,
    COST_BYTES,
    OUT_TREE,
    RESULT_BYTES,
    STDOUT_BYTES,
    Entry,
    Tally,
)
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

pytestmark = pytest.mark.timeout(300)

TALLY = Tally()
SETTLED = {"DONE", "FAILED", "BLOCKED", "INBOX", "CANCELED", "NEEDS_APPROVAL", "REVIEW"}

# One agent program for all: it writes the bytes its task's payload directory holds.
WRITER = r"""
import stat
PAYLOAD = Path(os.environ["MC_REPO"]) / "payloads" / os.environ["MC_TASK"]

def build(entries):
    base = os.fsencode(OUT)
    for e in entries:
        path = os.path.join(base, *(bytes.fromhex(n) for n in e["path"]))
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            if e["kind"] == "dir":
                os.makedirs(path, exist_ok=True)
            elif e["kind"] == "symlink":
                os.symlink(bytes.fromhex(e["target"]), path)
            elif e["kind"] == "fifo":
                os.mkfifo(path)
            else:
                flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_NONBLOCK
                fd = os.open(path, flags, 0o644)
                os.write(fd, b"x" * (0 if e["kind"] == "sparse" else e["size"]))
                os.ftruncate(fd, e["size"] + (64 << 20 if e["kind"] == "sparse" else 0))
                os.close(fd)
        except OSError:
            pass

if (PAYLOAD / "tree.json").exists():
    build(json.loads((PAYLOAD / "tree.json").read_text()))
if (PAYLOAD / "cost.bin").exists():
    Path(os.environ["MC_COST_JSON"]).write_bytes((PAYLOAD / "cost.bin").read_bytes())
if (PAYLOAD / "result.bin").exists():
    Path(os.environ["MC_RESULT_JSON"]).write_bytes((PAYLOAD / "result.bin").read_bytes())
if (PAYLOAD / "stdout.bin").exists():
    sys.stdout.buffer.write((PAYLOAD / "stdout.bin").read_bytes())
    sys.stdout.flush()
sys.exit(int((PAYLOAD / "exit").read_text()))
"""

PAYLOAD = st.one_of(
    st.fixed_dictionaries(
        {"protocol": st.just("files"), "result.bin": RESULT_BYTES, "exit": st.sampled_from([0, 1])},
        optional={"cost.bin": COST_BYTES, "tree": OUT_TREE},
    ),
    st.fixed_dictionaries(
        {"protocol": st.just("stdout"), "stdout.bin": STDOUT_BYTES, "exit": st.sampled_from([0, 1])}
    ),
    st.fixed_dictionaries(
        {
            "protocol": st.just("claude-code"),
            "stdout.bin": CLAUDE_BYTES,
            "exit": st.sampled_from([0, 0, 1]),
        },
        optional={"tree": OUT_TREE},
    ),
)


@pytest.fixture(scope="module", autouse=True)
def tally_table() -> Iterator[None]:
    yield
    print("\nhostile agents through the real engine (mc apply)\n" + TALLY.table())


def tree_json(entries: list[Entry]) -> str:
    return json.dumps(
        [
            {
                "path": [n.hex() for n in e.path],
                "kind": e.kind,
                "size": e.size,
                "target": e.target.hex(),
            }
            for e in entries
        ]
    )


def mission(root: Path, payloads: list[dict[str, object]]) -> ExecRepo:
    repo = ExecRepo(root)
    for protocol in ("files", "stdout", "claude-code"):
        repo.agent(f"writer-{protocol}", WRITER, protocol=protocol)
    # Declared now (a new agent later would wait for approval), used by the next commit only.
    repo.agent("canary", 'result(status="done", output="still here")\n')
    for i, payload in enumerate(payloads):
        name = f"hostile-{i}"
        for key, value in payload.items():
            if isinstance(value, bytes):
                repo.write(f"payloads/{name}/{key}", value)
        repo.write(f"payloads/{name}/exit", str(payload["exit"]))
        if "tree" in payload:
            tree = payload["tree"]
            assert isinstance(tree, list)
            repo.write(f"payloads/{name}/tree.json", tree_json(tree))
        repo.task(name, agent=f"writer-{payload['protocol']}")
    repo.commit("hostile agents")
    return repo


@settings(
    max_examples=4,
    deadline=None,
    database=None,
    phases=[Phase.explicit, Phase.generate],  # shrinking would rerun whole missions for minutes
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(payloads=st.lists(PAYLOAD, min_size=6, max_size=6))
def test_hostile_agents_end_with_a_recorded_reason_and_the_next_apply_runs(
    payloads: list[dict[str, object]],
) -> None:
    root = Path(tempfile.mkdtemp(prefix="mc-hostile-engine-"))
    try:
        repo = mission(root / "mission", payloads)
        for payload in payloads:
            TALLY.fed[f"{payload['protocol']} agent"] += 1
        try:
            repo.apply()
        except Exception:
            for payload in payloads:
                TALLY.escaped[f"{payload['protocol']} agent"] += 1
            raise
        for i in range(len(payloads)):
            task = repo.task_row(f"hostile-{i}")
            assert task.state in SETTLED, task
            runs = repo.runs(f"hostile-{i}")
            if not runs:  # the loop breaker quarantined its agent first: blocked, saying so
                assert task.state == "BLOCKED" and "quarantined" in str(task.reason), task
            assert all(r.state == "ENDED" and r.status for r in runs), (task, runs)
            for run in runs:
                if run.status != "done":
                    assert run.error and "\n" not in run.error, run
        repo.task("canary", agent="canary")
        repo.commit("the next commit")
        repo.apply()
        assert repo.task_row("canary").state == "DONE"
    finally:
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(root.with_name(root.name + "-scratch"), ignore_errors=True)
