"""Chaos harness: SIGKILL `mc serve` at seeded random moments while agents work, then audit.

A mission repo of N tasks is built in a temp dir; its agents (`python3 -c` / `sh -c`, short
seeded sleeps) append `$MC_RUN_ID $MC_TASK` to a ledger OUTSIDE the repo, sleep, write a valid
result.json (status done) and note when they finished. The real `mc serve` (127.0.0.1, a free
port) is SIGKILLed K times — only serve, as a crash would; its agents are left to mc's
recovery — and restarted each time. After the last restart it gets a bounded time to finish,
is stopped with SIGTERM, and the state is read through the CLI's stable JSON (`mc status`,
`mc runs`, `mc events`) once no process holds the DuckDB file.

Run: `make soak` or `.venv/bin/python bench/chaos.py [--seed S] [--tasks N] [--kills K] [--json]`.
Exits 1 when a "target 0" number is not 0. tests/chaos/ runs a small version in `make test`.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

MC = str(Path(sys.executable).parent / "mc")
DROP_ENV = ("MC_STATE", "MC_DEBUG", "MC_DASHBOARD_TOKEN", "GIT_DIR", "GIT_WORK_TREE")
GIT_ENV = {
    "GIT_AUTHOR_NAME": "chaos",
    "GIT_AUTHOR_EMAIL": "chaos@localhost",
    "GIT_COMMITTER_NAME": "chaos",
    "GIT_COMMITTER_EMAIL": "chaos@localhost",
    "GIT_CONFIG_GLOBAL": "/dev/null",
    "GIT_CONFIG_NOSYSTEM": "1",
}
# Agents: a trace line with the start time, the ledger line (an execution started), the sleep
# (the window a kill can interrupt), result.json written atomically, a trace line with the time
# it was complete. The trace comes first so every ledger line has a start time. The sh agent
# then lingers (cleanup, a slow exit): a kill in that window finds a finished agent still running.
PY_AGENT = """\
import json, os, time
e = os.environ
def log(path, line):
    with open(path, 'a') as f:
        f.write(line + '\\n')
log(e['CHAOS_TRACE'], 'S %s %.6f' % (e['MC_RUN_ID'], time.time()))
log(e['CHAOS_LEDGER'], e['MC_RUN_ID'] + ' ' + e['MC_TASK'])
with open(e['MC_TASK_JSON']) as f:
    time.sleep(json.load(f)['inputs']['sleep_ms'] / 1000)
tmp = e['MC_RESULT_JSON'] + '.tmp'
with open(tmp, 'w') as f:
    json.dump({'status': 'done', 'output': e['MC_TASK']}, f)
os.replace(tmp, e['MC_RESULT_JSON'])
log(e['CHAOS_TRACE'], 'F %s %.6f' % (e['MC_RUN_ID'], time.time()))
"""
SH_AGENT = """\
echo "S $MC_RUN_ID $(date +%s.%N)" >> "$CHAOS_TRACE"
echo "$MC_RUN_ID $MC_TASK" >> "$CHAOS_LEDGER"
sleep "$1"
printf '{"status": "done", "output": "%s"}' "$MC_TASK" > "$MC_RESULT_JSON.tmp"
mv "$MC_RESULT_JSON.tmp" "$MC_RESULT_JSON"
echo "F $MC_RUN_ID $(date +%s.%N)" >> "$CHAOS_TRACE"
sleep "$2"
"""
AGENT_CONCURRENCY = 2  # per agent; three agents
LINGER_S = 1.5  # how long the sh agent stays after its result is complete
BOOT_KILL_SHARE = 0.15  # share of kills aimed at a serve still starting (imports, recovery)
ALIVE_S = (0.2, 2.5)  # a serve that is up lives this long (uniform) before its kill
READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0
MAX_FAILED_STARTS = 3


@dataclass(frozen=True)
class ChaosConfig:
    """What to run: the seed decides the mission (agents, sleeps, dependencies) and the kills."""

    seed: int = 1
    tasks: int = 200
    kills: int = 30
    finish_timeout_s: float | None = None  # after the last restart; default from the size

    def finish_budget(self) -> float:
        return self.finish_timeout_s or 60.0 + 0.5 * self.tasks


@dataclass
class ChaosReport:
    """The audit: the target-0 numbers first, then how much work was repeated and why."""

    seed: int
    tasks: int
    kills: int
    tasks_lost: int = 0
    completions_recorded_twice: int = 0
    runs_left_open: int = 0
    event_seq_gaps: int = 0
    serve_exited_on_its_own: int = 0
    repeated_without_kill: int = 0
    executions: int = 0
    repeated_after_kill: int = 0
    interrupted_mid_flight: int = 0
    repeated_although_finished: int = 0
    finished_before_kill: int = 0
    finished_during_downtime: int = 0
    runs: int = 0
    runs_abandoned: int = 0
    events: int = 0
    boot_kills: int = 0
    wall_s: float = 0.0
    finish_s: float = 0.0
    startup_s: float = 0.0
    lost_names: list[str] = field(default_factory=list)
    twice_names: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    TARGET_ZERO = (
        "tasks_lost",
        "completions_recorded_twice",
        "runs_left_open",
        "event_seq_gaps",
        "serve_exited_on_its_own",
        "repeated_without_kill",
    )

    def failures(self) -> list[str]:
        return [
            f"{name} = {getattr(self, name)}" for name in self.TARGET_ZERO if getattr(self, name)
        ]

    def table(self) -> str:
        kills = f"{self.kills} ({self.boot_kills})"
        rows = [
            ("seed / tasks", f"{self.seed} / {self.tasks}", ""),
            ("kills of `mc serve` (SIGKILL; of them during start-up)", kills, ""),
            ("tasks lost (declared, not DONE at the end)", self.tasks_lost, "0"),
            ("completions recorded twice", self.completions_recorded_twice, "0"),
            ("runs left RUNNING/LAUNCHING", self.runs_left_open, "0"),
            ("event sequence gaps", self.event_seq_gaps, "0"),
            ("serve exits nobody asked for", self.serve_exited_on_its_own, "0"),
            ("executions repeated without a kill", self.repeated_without_kill, "0"),
            ("executions (ledger lines)", self.executions, f"{self.tasks} + repeats"),
            ("executions repeated after a kill", self.repeated_after_kill, "only interrupted"),
            ("· interrupted mid-flight (no result.json yet)", self.interrupted_mid_flight, ""),
            (
                "· repeated although finished (result.json complete)",
                self.repeated_although_finished,
                "0 (95/200 before)",
            ),
            ("  · finished before the kill", self.finished_before_kill, ""),
            ("  · finished while serve was down", self.finished_during_downtime, ""),
            ("runs recorded / abandoned", f"{self.runs} / {self.runs_abandoned}", ""),
            ("events", self.events, ""),
            ("mean start-up of serve (spawn → /healthz)", f"{self.startup_s:.2f} s", ""),
            (
                "wall time / last life until all DONE",
                f"{self.wall_s:.1f} / {self.finish_s:.1f} s",
                "",
            ),
        ]
        out = ["| measure | value | target |", "|---|---:|---|"]
        out += [f"| {a} | {b} | {c} |" for a, b, c in rows]
        return "\n".join(out)

    def to_json(self) -> dict[str, object]:
        return {**asdict(self), "failures": self.failures()}


# --- the mission repo -----------------------------------------------------------------------


def clean_env() -> dict[str, str]:
    """Ours, without settings that would point mc or git elsewhere."""
    return {k: v for k, v in os.environ.items() if k not in DROP_ENV} | GIT_ENV


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, env=clean_env(), check=True, capture_output=True)


def _doc(kind: str, name: str, spec: Mapping[str, object]) -> str:
    # JSON is YAML: no quoting questions for the agents' scripts.
    body = {"apiVersion": "mc/v1", "kind": kind, "metadata": {"name": name}, "spec": spec}
    return json.dumps(body, indent=1) + "\n"


def _sleep_range(cfg: ChaosConfig) -> tuple[float, float]:
    """Spread the work over the kills: mean sleep ≈ kills × mean life × width / tasks."""
    width = 3 * AGENT_CONCURRENCY
    mean = cfg.kills * (sum(ALIVE_S) / 2) * width / max(cfg.tasks, 1)
    mean = min(max(mean, 0.1), 3.0)
    return mean * 0.2, mean * 1.8


def build_mission(repo: Path, cfg: ChaosConfig, logs: Path) -> list[str]:
    """Write and commit the mission; return the task names."""
    rng = random.Random(f"mission-{cfg.seed}")
    env = {"CHAOS_LEDGER": str(logs / "ledger"), "CHAOS_TRACE": str(logs / "trace")}
    (repo / "agents").mkdir(parents=True)
    (repo / "tasks").mkdir()
    (repo / "mission.yaml").write_text(_doc("Mission", "chaos", {}))
    low, high = _sleep_range(cfg)
    agents = {
        "py-a": ["python3", "-c", PY_AGENT],
        "py-b": ["python3", "-c", PY_AGENT],
        "sh-a": ["sh", "-c", SH_AGENT, "sh", f"{(low + high) / 2:.2f}", f"{LINGER_S}"],
    }
    for name, command in agents.items():
        # The ledger and trace live outside the repo: the sandbox shows the agents that folder.
        mounts = [{"path": str(logs), "mode": "rw"}]
        agent = {"command": command, "protocol": "files", "env": env, "mounts": mounts}
        agent_spec = {**agent, "concurrency": AGENT_CONCURRENCY}
        (repo / "agents" / f"{name}.yaml").write_text(_doc("Agent", name, agent_spec))
    names = [f"t{i:04d}" for i in range(cfg.tasks)]
    for i, name in enumerate(names):
        spec: dict[str, object] = {
            "title": f"chaos {i}",
            "agent": rng.choice(sorted(agents)),
            "inputs": {"sleep_ms": round(rng.uniform(low, high) * 1000)},
        }
        if i and rng.random() < 0.2:
            spec["depends_on"] = [names[rng.randrange(i)]]
        (repo / "tasks" / f"{name}.yaml").write_text(_doc("Task", name, spec))
    git(repo, "init", "-q")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "chaos mission")
    return names


# --- mc serve, killed and restarted ---------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Serve:
    """One `mc serve` life at a time, its output kept per life for the post-mortem."""

    def __init__(self, repo: Path, logs: Path) -> None:
        self.repo, self.logs = repo, logs
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.lives = 0
        self.unasked_exits = 0
        self.spawned = 0.0
        self.startups: list[float] = []

    def start(self) -> None:
        self.port, self.lives = free_port(), self.lives + 1
        self.spawned = time.monotonic()
        port = str(self.port)
        with open(self.logs / f"serve-{self.lives:03d}.log", "wb") as log:
            self.proc = subprocess.Popen(
                [MC, "--repo", str(self.repo), "serve", "--host", "127.0.0.1", "--port", port],
                env=clean_env(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def _get(self, path: str) -> bytes | None:
        url = f"http://127.0.0.1:{self.port}{path}"
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:
                return bytes(resp.read())
        except OSError:
            return None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def wait_ready(self, timeout: float = READY_TIMEOUT_S) -> bool:
        """Until /healthz answers. A serve that exits meanwhile is counted and restarted, a few
        times; one that cannot start at all (e.g. a broken checkout) ends the run."""
        deadline = time.monotonic() + timeout
        failed_starts = 0
        while time.monotonic() < deadline:
            if not self.alive():
                self.unasked_exits += 1
                failed_starts += 1
                if failed_starts > MAX_FAILED_STARTS:
                    raise RuntimeError(f"mc serve keeps exiting while starting:\n{self.tail()}")
                self.start()
            elif self._get("/healthz") == b"ok":
                self.startups.append(time.monotonic() - self.spawned)
                return True
            time.sleep(0.05)
        return False

    def tail(self, lines: int = 15) -> str:
        log = self.logs / f"serve-{self.lives:03d}.log"
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])

    def done_count(self) -> int | None:
        """DONE tasks, through `mc status --json` (which reads through this serve)."""
        try:
            status = mc_json(self.repo, "status")
        except (RuntimeError, ValueError, subprocess.TimeoutExpired):
            return None
        tasks = status.get("tasks", {}) if isinstance(status, dict) else {}
        return int(tasks.get("DONE", 0))

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        elif self.proc is not None:
            self.unasked_exits += 1
        if self.proc is not None:
            self.proc.wait(timeout=STOP_TIMEOUT_S)

    def stop(self) -> bool:
        """SIGTERM and a bounded wait; SIGKILL if it does not stop. True if it stopped cleanly."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc is None
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=STOP_TIMEOUT_S)
            return True
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=STOP_TIMEOUT_S)
            return False


def kill_schedule(cfg: ChaosConfig) -> list[tuple[bool, float]]:
    """(during start-up?, delay) per kill: from spawn for start-up kills, else from ready."""
    rng = random.Random(f"kills-{cfg.seed}")
    plan = []
    for _ in range(cfg.kills):
        if rng.random() < BOOT_KILL_SHARE:
            plan.append((True, rng.uniform(0.3, 1.5)))
        else:
            plan.append((False, rng.uniform(*ALIVE_S)))
    return plan


def agents_of(marker: str) -> list[int]:
    """Processes whose environment names our temp dir: the agents serve left behind."""
    needle = marker.encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        with contextlib.suppress(OSError):
            if needle in Path(f"/proc/{entry}/environ").read_bytes():
                found.append(int(entry))
    return found


@contextlib.contextmanager
def supervised(repo: Path, logs: Path) -> Iterator[Serve]:
    """A Serve that is stopped, and whose orphaned agents are killed, however we leave."""
    serve = Serve(repo, logs)
    try:
        yield serve
    finally:
        with contextlib.suppress(Exception):
            if serve.proc is not None and serve.proc.poll() is None:
                serve.proc.kill()
                serve.proc.wait(timeout=STOP_TIMEOUT_S)
        for pid in agents_of(f"CHAOS_LEDGER={logs / 'ledger'}"):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)


def wait_converged(serve: Serve, total: int, timeout: float) -> bool:
    """Poll the status view until every task is DONE (bounded)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not serve.alive():
            serve.unasked_exits += 1
            serve.start()
            serve.wait_ready()
        elif serve.done_count() == total:
            return True
        time.sleep(0.5)
    return False


def run_kills(serve: Serve, cfg: ChaosConfig) -> tuple[list[float], int]:
    """Start, kill, restart per the schedule; return the kill times (wall clock)."""
    killed_at: list[float] = []
    boot = 0
    serve.start()
    for during_boot, delay in kill_schedule(cfg):
        if during_boot:
            boot += 1
        elif not serve.wait_ready():
            raise RuntimeError(f"mc serve did not answer /healthz in {READY_TIMEOUT_S:.0f} s")
        time.sleep(delay)
        serve.kill()
        killed_at.append(time.time())
        serve.start()
    return killed_at, boot


# --- reading the outcome --------------------------------------------------------------------


def mc_json(repo: Path, *args: str) -> object:
    """One `mc … --json` call, parsed (the CLI's JSON shapes are the stable contract)."""
    out = subprocess.run(
        [MC, "--repo", str(repo), *args, "--json"],
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"mc {' '.join(args)} failed: {out.stderr.strip()[-2000:]}")
    return json.loads(out.stdout)


@dataclass(frozen=True)
class Observed:
    task_counts: dict[str, int]
    runs: list[dict[str, object]]
    events: list[dict[str, object]]


def read_state(repo: Path) -> Observed:
    """After serve has exited: the CLI reads the DuckDB file itself (one process at a time)."""
    status = mc_json(repo, "status")
    runs = mc_json(repo, "runs", "--limit", "100000000")
    events = mc_json(repo, "events", "--limit", "100000000")
    assert isinstance(status, dict) and isinstance(runs, list) and isinstance(events, list)
    return Observed(dict(status.get("tasks", {})), runs, events)


def seq_gaps(seqs: Sequence[int]) -> int:
    """Numbers missing from 1..max (an append-only log that lost a write shows a hole)."""
    if not seqs:
        return 0
    return max(seqs) - len(set(seqs))


def audit_state(report: ChaosReport, names: list[str], seen: Observed) -> None:
    report.tasks_lost = len(names) - seen.task_counts.get("DONE", 0)
    done_runs: dict[str, int] = defaultdict(int)
    done_moves: dict[str, int] = defaultdict(int)
    for run in seen.runs:
        if run.get("status") == "done":
            done_runs[str(run["task"])] += 1
    for event in seen.events:
        data = event.get("data")
        moved = event.get("kind") == "task.transition" and isinstance(data, dict)
        if moved and isinstance(data, dict) and data.get("to") == "DONE":
            done_moves[str(event["subject"]).removeprefix("Task/")] += 1
    twice = sorted(
        {t for t, n in done_runs.items() if n > 1} | {t for t, n in done_moves.items() if n > 1}
    )
    report.completions_recorded_twice, report.twice_names = len(twice), twice[:20]
    if report.tasks_lost:
        report.lost_names = sorted(set(names) - set(done_moves))[:20]
    report.runs_left_open = sum(1 for r in seen.runs if r.get("state") in ("RUNNING", "LAUNCHING"))
    report.event_seq_gaps = seq_gaps([int(str(e["seq"])) for e in seen.events])
    report.runs, report.events = len(seen.runs), len(seen.events)
    report.runs_abandoned = sum(1 for r in seen.runs if r.get("status") == "abandoned")


def _read_lines(path: Path) -> list[list[str]]:
    if not path.exists():
        return []
    return [line.split() for line in path.read_text().splitlines() if line.strip()]


def audit_ledger(
    report: ChaosReport, logs: Path, killed_at: list[float], run_status: dict[str, str]
) -> None:
    """Each execution after a task's first: why was it repeated? Judged by its predecessor."""
    ledger = [parts for parts in _read_lines(logs / "ledger") if len(parts) == 2]
    starts: dict[str, float] = {}
    finishes: dict[str, float] = {}
    for parts in _read_lines(logs / "trace"):
        if len(parts) == 3:
            (starts if parts[0] == "S" else finishes)[parts[1]] = float(parts[2])
    by_task: dict[str, list[str]] = defaultdict(list)
    for run_id, task in ledger:
        by_task[task].append(run_id)
    report.executions = len(ledger)
    for runs in by_task.values():
        for previous, following in itertools.pairwise(runs):
            if run_status.get(previous) != "abandoned":
                report.repeated_without_kill += 1
                continue
            # The kill that cost `previous` its run is the last one before the repeat started.
            kill = max((k for k in killed_at if k <= starts.get(following, 0.0)), default=0.0)
            _classify_repeat(report, finishes.get(previous), kill)


def _classify_repeat(report: ChaosReport, finished: float | None, kill: float) -> None:
    report.repeated_after_kill += 1
    if finished is None:
        report.interrupted_mid_flight += 1
    else:
        report.repeated_although_finished += 1
        if finished <= kill:
            report.finished_before_kill += 1
        else:
            report.finished_during_downtime += 1


# --- the whole run --------------------------------------------------------------------------


def run_chaos(cfg: ChaosConfig, workdir: Path | None = None) -> ChaosReport:
    """Build, kill and restart, let it finish, stop it, audit. Cleans up what it started."""
    began = time.monotonic()
    with contextlib.ExitStack() as stack:
        if workdir is None:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="mc-chaos-")))
        repo, logs = workdir / "repo", workdir / "logs"
        logs.mkdir(parents=True)
        names = build_mission(repo, cfg, logs)
        report = ChaosReport(cfg.seed, cfg.tasks, 0)
        with supervised(repo, logs) as serve:
            killed_at, report.boot_kills = run_kills(serve, cfg)
            report.kills = len(killed_at)
            if not serve.wait_ready():
                raise RuntimeError("mc serve did not come back after the last kill")
            finish_began = time.monotonic()
            if not wait_converged(serve, len(names), cfg.finish_budget()):
                report.notes.append(f"not every task DONE within {cfg.finish_budget():.0f} s")
            report.finish_s = time.monotonic() - finish_began
            if not serve.stop():
                report.notes.append("mc serve ignored SIGTERM; killed")
            report.serve_exited_on_its_own = serve.unasked_exits
            report.startup_s = sum(serve.startups) / max(len(serve.startups), 1)
        seen = read_state(repo)
        audit_state(report, names, seen)
        run_status = {str(r["id"]): str(r.get("status")) for r in seen.runs}
        audit_ledger(report, logs, killed_at, run_status)
        report.wall_s = time.monotonic() - began
        return report


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--kills", type=int, default=30)
    parser.add_argument("--finish-timeout", type=float, default=None, help="seconds")
    parser.add_argument("--keep", type=Path, default=None, help="work in this (new) dir")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)
    cfg = ChaosConfig(args.seed, args.tasks, args.kills, args.finish_timeout)
    # Ctrl-C and SIGTERM unwind through `supervised`, which stops serve and its agents.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        report = run_chaos(cfg, args.keep)
    except RuntimeError as exc:
        print(f"chaos: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(report.to_json(), indent=2))
    else:
        print(report.table())
        for line in report.notes + [f"lost: {report.lost_names}"] * bool(report.lost_names):
            print(f"note: {line}")
        for failure in report.failures():
            print(f"FAIL: {failure} (target 0)")
    return 1 if report.failures() else 0


if __name__ == "__main__":
    sys.exit(main())
