"""Helpers for the dashboard tests: a real mission applied by real agents, then served.

`build_mission` writes a small mission repo (agents are Python scripts run with this
interpreter), commits it with git and applies it in-process with `apply_now` and a `Drive`
that stops once only a retry backoff is left, so the state holds what a real apply leaves:
a DONE task with content drops, a FAILED task, a task waiting for its next retry, a
task waiting for an approval, a workflow run with four steps, runs, logs, ledger, events.
The state file is then closed and served read-only, or through cursors of one connection.
"""

from __future__ import annotations

import shutil
import warnings
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from helpers.agents import PY as PY
from helpers.git import GIT_IDENTITY
from helpers.mission_repo import GitRepo

from api.app import create_app
from reconciler.commands.plan_apply import Drive
from reconciler.engine.engine import Engine
from reconciler.engine.launch import Paths
from reconciler.serve.metrics import Metrics
from state.dashboard import DashboardReader
from state.store import State, StateReader

with warnings.catch_warnings():  # starlette's TestClient warns that httpx is deprecated for it
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

SECRET_ENV = "MC_DASH_TEST_SECRET"
SECRET_VALUE = "s3cr3t-value-never-shown-4711"
XSS = "<script>alert(1)</script>"
# A long word (a link) in an approver's note: the approvals page must wrap it, not scroll.
RUNBOOK = "https://wiki.example.invalid/ops/runbooks/2026/rollback_plan_for_the_risky_change" + (
    "_reviewed_with_the_on_call_team_and_signed_off_by_the_service_owner_before_the_window"
)
PNG_1PX = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9a"
    "wAAAABJRU5ErkJggg=="
)

# Writes a markdown report, a PNG and an HTML file (which must never be served as HTML),
# prints its secret (the runtime redacts it) and markup (the page escapes it).
WRITER = f"""
import base64

print("writing <b>bold</b> for", TASK["task"])
print("secret is", os.environ.get("SECRET_TOKEN"))
OUT.mkdir(exist_ok=True)
(OUT / "report.md").write_text(
    "# Report for " + TASK["task"] + "\\n\\nSome **bold** text and `code`.\\n\\n"
    "- one\\n- two <script>alert('md')</script>\\n"
)
(OUT / "pixel.png").write_bytes(base64.b64decode("{PNG_1PX}"))
(OUT / "page.html").write_text("<script>alert('html drop')</script>")
(OUT / "blob.bin").write_bytes(bytes(range(256)))
result(status="done", output="report ready: " + TASK["prompt"], cost_usd=0.25, tokens=42)
"""

REVIEWER = """
result(status="done", output="draft for review: " + TASK["task"], cost_usd=0, tokens=1)
"""

FLAKER = """
print("the service is down, try later", file=sys.stderr)
sys.exit(3)
"""

BREAKER = """
print("boom <script>alert(3)</script>", file=sys.stderr)
result(status="failed", error="<img src=x onerror=alert(4)> exploded")
"""


def _agent(repo: GitRepo, name: str, code: str, **spec: Any) -> None:
    repo.agent(name, **{"command": repo.agent_program(name, code), **spec})


def _task(repo: GitRepo, name: str, labels: dict[str, str] | None = None, **spec: Any) -> None:
    spec.setdefault("title", f"Task {name}")
    spec.setdefault("retry", {"max_attempts": 1})
    repo.write_doc(f"tasks/{name}.yaml", "Task", name, spec, labels)


@dataclass(frozen=True)
class Mission:
    root: Path

    @property
    def state_file(self) -> Path:
        return self.root / ".mc" / "state.duckdb"

    @property
    def paths(self) -> Paths:
        return Paths(self.root, self.root / ".mc")


def until_only_backoff_is_left(retrying: str) -> Drive:
    """Drive the work like `mc apply`, but stop once nothing runs and `retrying` waits for
    its next attempt (minutes away) on two ticks in a row, instead of sleeping through it."""
    quiet = [0]

    def progress(engine: Engine) -> None:
        world = engine.world
        task = world.tasks.get(retrying) if world is not None else None
        idle = world is not None and not world.in_flight
        quiet[0] = quiet[0] + 1 if idle and task and task.next_attempt_at else 0

    return Drive(progress=progress, should_stop=lambda: quiet[0] >= 2)


def build_mission(root: Path) -> Mission:
    """Write, commit and apply the test mission; return once the work has settled."""
    repo = GitRepo(root)
    repo.init()
    no_prod = {
        "name": "no-prod-dispatch",
        "match": {"action": ["dispatch"], "labels": {"env": "prod"}},
    }
    mission = {"budget": {"daily_usd": 10}, "policy": {"rules": [{**no_prod, "decide": "DENY"}]}}
    repo.write_doc("mission.yaml", "Mission", "dash-tests", mission)
    _agent(
        repo,
        "writer",
        WRITER,
        role="Writes reports",
        capabilities=["write"],
        env={"SECRET_TOKEN": {"from_env": SECRET_ENV}, "PLAIN": "visible"},
        concurrency=4,
        budget={"daily_usd": 5, "per_run_usd": 1},
    )
    _agent(repo, "breaker", BREAKER, role="Always fails", capabilities=["break"])
    _agent(repo, "reviewer", REVIEWER, role="Drafts for review", budget={"daily_usd": 1})
    _agent(repo, "sleeper", REVIEWER, role="Paused", status="paused")
    _agent(repo, "flaker", FLAKER, role="Fails, then retries later", capabilities=["flake"])
    _task(
        repo,
        "write-report",
        {"area": "docs", "team": "blue"},
        agent="writer",
        title="Write the report",
        prompt="the quarterly report",
    )
    _task(repo, "xss-title", {"area": "docs"}, agent="writer", title=XSS, prompt=XSS)
    _task(repo, "broken", {"area": "ops"}, agent="breaker", title="Break things", prompt="go")
    _task(repo, "risky", agent="writer", title="Risky change", prompt="x", risk="HIGH")
    _task(repo, "needs-review", agent="reviewer", title="Draft", prompt="d", approval="after")
    _task(repo, "prod-deploy", {"env": "prod"}, agent="reviewer", title="Deploy", prompt="p")
    retry_later = {"max_attempts": 3, "initial_interval": "1h", "jitter": 0}
    _task(repo, "flaky", agent="flaker", title="Flaky", prompt="f", retry=retry_later)
    _task(
        repo, "after-draft", agent="sleeper", title="After", prompt="a", depends_on=["needs-review"]
    )
    steps = [
        {"id": "plan", "agent": "writer", "prompt": "Plan: {{ inputs.goal }}"},
        {"id": "build", "agent": "writer", "depends_on": ["plan"], "prompt": "build"},
        {"id": "docs", "agent": "writer", "depends_on": ["plan"], "prompt": "docs"},
        {"id": "ship", "agent": "writer", "depends_on": ["build", "docs"], "prompt": "ship"},
    ]
    pipeline = {"inputs": {"goal": {"required": True}}, "steps": steps}
    repo.write_doc("workflows/pipeline.yaml", "Workflow", "pipeline", pipeline)
    run = {"workflow": "pipeline", "inputs": {"goal": "ship it"}}
    repo.write_doc("runs/demo-run.yaml", "WorkflowRun", "demo-run", run)
    # setup -> fix skips two stages: a straight edge would cross the lint and test boxes
    triage = [
        {"id": "setup", "agent": "sleeper", "prompt": "s"},
        {"id": "lint", "agent": "sleeper", "depends_on": ["setup"], "prompt": "l"},
        {"id": "test", "agent": "sleeper", "depends_on": ["lint"], "prompt": "t"},
        {"id": "fix", "agent": "sleeper", "depends_on": ["setup", "test"], "prompt": "f"},
    ]
    repo.write_doc("workflows/triage.yaml", "Workflow", "triage", {"steps": triage})
    repo.write_doc("runs/triage-run.yaml", "WorkflowRun", "triage-run", {"workflow": "triage"})
    repo.commit("the dashboard test mission")
    repo.apply_now(until_only_backoff_is_left("flaky"))
    # A changed agent command needs an approval (HIGH): it waits in `pending`.
    _agent(
        repo,
        "breaker",
        BREAKER,
        role="Always fails",
        capabilities=["break"],
        command=[PY, "{repo}/agents/breaker.py", "--v2"],
    )
    repo.commit("change the breaker's command")
    repo.apply_now(until_only_backoff_is_left("flaky"))
    # An unsigned approval with the approver's words: recorded, rejected, its note kept.
    approval = {
        "target": "Task/risky",
        "digest": repo.context().repo.desired("HEAD").docs["Task/risky"].digest,
        "reason": "checked the <b>rollback</b> plan with ops: " + RUNBOOK,
    }
    repo.write_doc("approvals/ok-risky-unsigned.yaml", "Approval", "ok-risky-unsigned", approval)
    repo.commit("approve Task/risky, unsigned")
    repo.apply_now(until_only_backoff_is_left("flaky"))
    return Mission(root)


@contextmanager
def git_env() -> Iterator[None]:
    """Session-wide: git identity, no user config, the writer's secret in mc's environment."""
    with _patched({**GIT_IDENTITY, SECRET_ENV: SECRET_VALUE}, ("MC_STATE", "MC_DEBUG")):
        yield


@contextmanager
def _patched(values: dict[str, str], drop: tuple[str, ...]) -> Iterator[None]:
    with pytest.MonkeyPatch.context() as mp:
        for key, value in values.items():
            mp.setenv(key, value)
        for key in drop:
            mp.delenv(key, raising=False)
        yield


def file_readers(
    path: Path,
) -> Callable[[], AbstractContextManager[tuple[StateReader, DashboardReader]]]:
    """Open the state file read-only for each request (what a reader without `mc serve` does)."""

    @contextmanager
    def open_readers() -> Iterator[tuple[StateReader, DashboardReader]]:
        with State.open(path, write=False) as state:
            yield state.reader, DashboardReader(state.db)

    return open_readers


SERVE_STATUS = {
    "last_commit": "0123456789abcdef0123456789abcdef01234567",
    "last_reconciled_at": "2026-11-23T10:00:00",
    "uptime_s": 3725,
}


def make_app(
    mission: Mission,
    *,
    token: str | None = None,
    status: Callable[[], dict[str, Any]] | None = None,
    metrics: Metrics | None = None,
    stream_seconds: float = 1.0,
    open_reader: Callable[[], AbstractContextManager[tuple[StateReader, DashboardReader]]]
    | None = None,
    **options: Any,
) -> Any:
    return create_app(
        open_reader or file_readers(mission.state_file),
        paths=mission.paths,
        metrics=metrics,
        token=token,
        status=status,
        poll_seconds=0.1,
        stream_seconds=stream_seconds,
        **options,
    )


def seed_tasks(path: Path, n: int, now: datetime) -> None:
    """Add `n` Task resources and task rows in a handful of multi-row statements."""
    from state.store import ResourceWrite

    states = ["INBOX", "DONE", "FAILED", "IN_PROGRESS", "BLOCKED"]
    names = [f"bulk-{i:06d}" for i in range(n)]
    with State.open(path, write=True) as state:
        writes = [
            ResourceWrite(
                "Task",
                name,
                {"tier": f"t{i % 10}", "parity": "even" if i % 2 == 0 else "odd"},
                {"title": f"Bulk task number {i}", "agent": f"agent-{i % 7}", "prompt": "p"},
                f"sha256:{i:064x}",
                f"tasks/{name}.yaml",
            )
            for i, name in enumerate(names)
        ]
        with state.db.transaction():
            state.writer.upsert_resources(writes, "f" * 40, now)
            state.db.execute(
                "INSERT INTO tasks (name, state, agent, attempts, created_at, updated_at)"
                " SELECT unnest(?), unnest(?), unnest(?), 0, ?, unnest(?::TIMESTAMP[])",
                [
                    names,
                    [states[i % len(states)] for i in range(n)],
                    [f"agent-{i % 7}" if i % 5 else None for i in range(n)],
                    now,
                    [now - timedelta(seconds=i) for i in range(n)],
                ],
            )


# --- geometry checks (DAG edges against step boxes) ---------------------------------------------

Box = tuple[float, float, float, float]  # x, y, width, height


def segment_crosses(a: tuple[float, float], b: tuple[float, float], box: Box) -> bool:
    """Does the axis-parallel or slanted segment a-b pass through the inside of `box`?

    Sampled densely (1/64 of the segment): edges are short, boxes are tens of pixels wide,
    and touching an outline from outside does not count."""
    x, y, w, h = box
    for i in range(65):
        t = i / 64
        px, py = a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t
        if x < px < x + w and y < py < y + h:
            return True
    return False


def edge_crossings(
    edges: list[tuple[str, str, list[tuple[float, float]]]], boxes: dict[str, Box]
) -> list[str]:
    """`source->target crosses step` for every edge segment inside a box that is not one of
    the edge's own two ends."""
    found = []
    for source, target, points in edges:
        for a, b in pairwise(points):
            for step, box in boxes.items():
                if step not in (source, target) and segment_crosses(a, b, box):
                    found.append(f"{source}->{target} crosses {step}")
    return found


# --- fixtures (exposed by conftest.py) ---------------------------------------------------------


@pytest.fixture(scope="session")
def mission(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mission]:
    """Applied by real agents: DONE tasks with drops, a FAILED one, a pending approval, a run."""
    with git_env():
        yield build_mission(tmp_path_factory.mktemp("dash") / "mission")


@pytest.fixture(scope="session")
def client(mission: Mission) -> Iterator[TestClient]:
    """The dashboard over the closed state file, each request opening it read-only."""
    with TestClient(make_app(mission, status=lambda: dict(SERVE_STATUS))) as c:
        yield c


@pytest.fixture
def plain_client(mission: Mission) -> Iterator[TestClient]:
    """The dashboard without serve-loop facts (as when served by something else)."""
    with TestClient(make_app(mission)) as c:
        yield c


@pytest.fixture
def state_copy(mission: Mission, tmp_path: Path) -> Path:
    """A private copy of the applied state, for tests that write to it or grow it."""
    target = tmp_path / "state.duckdb"
    shutil.copy(mission.state_file, target)
    wal = mission.state_file.with_name(mission.state_file.name + ".wal")
    if wal.exists():
        shutil.copy(wal, target.with_name(target.name + ".wal"))
    return target
