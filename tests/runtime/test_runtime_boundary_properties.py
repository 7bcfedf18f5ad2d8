"""Property tests of the one boundary (issue 14, item 1): hypothesis generates hostile
result.json, cost.json, stdout, Claude Code and Codex output and out/ trees; each is collected
the way an ended run is (collect.outcome_of, and leftovers.left_outcome as recovery does) and
checked as the engine checks it (boundary.checked_outcome). Nothing may raise; the run ends
with a status, a one-line reason unless it is done, and only values the state can store.

The tally of inputs generated and inputs that escaped (raised) is printed at the end (`-s`)."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from helpers.hostile import (
    CLAUDE_BYTES,
    CODEX_LINES,
    COST_BYTES,
    OUT_TREE,
    RESULT_BYTES,
    STDOUT_BYTES,
    Entry,
    Tally,
    build_tree,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.runtime.boundary import MAX_COST_USD, MAX_TOKENS, _outcome_problem, checked_outcome
from reconciler.runtime.collect import outcome_of
from reconciler.runtime.drop_store import store_dir
from reconciler.runtime.leftovers import left_outcome
from reconciler.runtime.types import AgentProtocol, DropCaps, LaunchRequest, Outcome, RunHandle
from reconciler.runtime.workspace import WorkspacePaths

pytestmark = pytest.mark.timeout(300)

TALLY = Tally()
SECRET = "s3cret-token-0042"
PROPERTY = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    database=None,
)
STATUSES = {"done", "retry", "failed", "blocked", "abandoned", "canceled"}
CAPS = DropCaps(max_file_bytes=1024 * 1024, max_run_bytes=2 * 1024 * 1024, max_files=20)


@pytest.fixture(scope="module", autouse=True)
def tally_table() -> Iterator[None]:
    yield
    shutil.rmtree(BASE, ignore_errors=True)
    print("\nhostile inputs through the boundary (unit level)\n" + TALLY.table())


def fed(kind: str, collect: Callable[[], Outcome]) -> Outcome:
    """Run `collect` on one hostile input, counting it, and an exception as an escape."""
    TALLY.fed[kind] += 1
    try:
        return collect()
    except Exception:
        TALLY.escaped[kind] += 1
        raise


def workspace() -> WorkspacePaths:
    BASE.mkdir(exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="ws-", dir=BASE)) / ".mc" / "work" / "t" / "1"
    (root / "out").mkdir(parents=True)
    return WorkspacePaths(root)


BASE = Path(tempfile.gettempdir()) / f"mc-hostile-{os.getpid()}"  # made on first use


def ended_run(paths: WorkspacePaths, protocol: AgentProtocol, code: int, stdout: int) -> Any:
    """What collect.outcome_of reads of an ended local run, without a process behind it."""
    req = LaunchRequest(
        run_id="r-1",
        task="t",
        attempt=1,
        workspace=paths.root,
        command=("agent",),
        env={"API_TOKEN": SECRET},
        protocol=protocol,
        task_json={},
        timeout_s=60,
        per_run_cap_usd=Decimal(5),
        secret_values=(SECRET,),
        drop_limits=CAPS,
    )
    return SimpleNamespace(
        req=req,
        paths=paths,
        handle=RunHandle("r-1", 1, 1),
        returncode=code,
        stop=None,
        sigkilled=False,
        cost=Decimal(0),
        started_at=time.time(),
        ended_at=time.time(),
        stdout=SimpleNamespace(kept=stdout, truncated=False),
    )


def assert_recorded(outcome: Outcome) -> None:
    """What the engine gets: a status, a one-line reason unless done, storable values."""
    checked = checked_outcome(outcome)
    assert checked.status in STATUSES
    if checked.status != "done":
        assert isinstance(checked.error, str) and checked.error
        assert "\n" not in checked.error
    assert _outcome_problem(checked) is None, _outcome_problem(checked)
    assert 0 <= checked.cost_usd <= MAX_COST_USD and 0 <= checked.tokens <= MAX_TOKENS
    for value in (checked.output, dict(checked.outputs), dict(checked.memory)):
        json.dumps(value, ensure_ascii=False, allow_nan=False).encode("utf-8")
    assert SECRET not in json.dumps(
        [checked.output, checked.outputs, checked.memory, checked.error]
    )
    assert (
        not list(store_dir(checked.stdout_path.parent).glob(".tmp-*"))
        if checked.stdout_path
        else True
    )


def collect(
    paths: WorkspacePaths, protocol: AgentProtocol, code: int, stdout: bytes = b""
) -> Outcome:
    paths.stdout_log.write_bytes(stdout)
    paths.stderr_log.write_bytes(b"")
    found: Outcome = outcome_of(ended_run(paths, protocol, code, len(stdout)))
    return found


def secretly(data: bytes, where: int) -> bytes:
    """`data` with the secret spliced in (agents echo what they were given)."""
    cut = min(where, len(data))
    return data[:cut] + SECRET.encode() + data[cut:]


@PROPERTY
@given(
    result=RESULT_BYTES,
    cost=st.one_of(st.none(), COST_BYTES),
    code=st.sampled_from([0, 0, 1, -9, 127]),
    splice=st.one_of(st.none(), st.integers(0, 40)),
)
def test_any_result_json_and_cost_json(
    result: bytes, cost: bytes | None, code: int, splice: int | None
) -> None:
    paths = workspace()
    paths.result_json.write_bytes(result if splice is None else secretly(result, splice))
    if cost is not None:
        paths.cost_json.write_bytes(cost)
    assert_recorded(fed("result.json + cost.json", lambda: collect(paths, "files", code)))
    left = fed(
        "result.json (recovery)",
        lambda: (
            left_outcome("r-1", paths.root, "files", Decimal(5), [SECRET], time.time())
            or Outcome("r-1", "abandoned", "abandoned", None, started_at=0, ended_at=0)
        ),
    )
    assert_recorded(left)


@PROPERTY
@given(stdout=STDOUT_BYTES, code=st.sampled_from([0, 0, 1, 2]))
def test_any_stdout_protocol_output(stdout: bytes, code: int) -> None:
    paths = workspace()
    assert_recorded(fed("stdout protocol", lambda: collect(paths, "stdout", code, stdout)))


@PROPERTY
@given(stdout=CLAUDE_BYTES, code=st.sampled_from([0, 0, 1]))
def test_any_claude_code_output(stdout: bytes, code: int) -> None:
    paths = workspace()
    outcome = fed("claude-code JSON", lambda: collect(paths, "claude-code", code, stdout))
    assert_recorded(outcome)
    if outcome.status == "done":  # only a whole success is done
        doc = json.loads(stdout.decode().strip().splitlines()[-1]) if stdout.strip() else None
        assert outcome.output is not None or doc is not None


def load_codex() -> Any:
    import importlib.util
    import sys

    path = Path(__file__).parents[2] / "examples" / "agents" / "codex.py"
    spec = importlib.util.spec_from_file_location("codex_wrapper_props", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


CODEX = load_codex()


@PROPERTY
@given(lines=CODEX_LINES, code=st.sampled_from([0, 0, 1]))
def test_any_codex_event_stream(lines: list[str], code: int) -> None:
    """The Codex wrapper folds any stream into a result.json that crosses the boundary."""
    paths = workspace()

    def through_wrapper() -> Outcome:
        transcript = CODEX.Transcript()
        for line in lines:
            event = CODEX.parse_event(line)
            if event is not None:
                transcript.add(event)
        result = CODEX.verdict(code, transcript)
        paths.result_json.write_text(json.dumps(result))
        return collect(paths, "files", 0)

    outcome = fed("codex JSONL (wrapper)", through_wrapper)
    assert_recorded(outcome)
    assert outcome.status != "done" or any("turn.completed" in line for line in lines)


@settings(PROPERTY, max_examples=120)
@given(tree=OUT_TREE, splice=st.booleans())
def test_any_out_tree(tree: list[Entry], splice: bool) -> None:
    paths = workspace()
    if splice:  # before the tree: never written through what the tree puts there
        (paths.out_dir / "echo.txt").write_text(f"the token is {SECRET}")
    build_tree(paths.out_dir, tree)
    paths.result_json.write_text('{"status": "done", "output": "made files"}')
    started = time.monotonic()
    outcome = fed("out/ tree", lambda: collect(paths, "files", 0))
    assert time.monotonic() - started < 10  # a FIFO never blocks, a sparse file is not read
    assert_recorded(outcome)
    checked = checked_outcome(outcome)
    store = store_dir(paths.root)
    for drop in checked.drops:
        assert drop.local_path.parent.parent == store
        assert SECRET.encode() not in drop.local_path.read_bytes()
    assert not [p for p in store.rglob(".tmp-*")] if store.exists() else True
    for link in (p for p in paths.out_dir.rglob("*") if p.is_symlink()):
        assert all(
            os.fsencode(d.path) != os.fsencode(link.relative_to(paths.out_dir))
            for d in checked.drops
        )
