"""Turn a dispatch into a LaunchRequest (workspace, task.json, env with secrets resolved);
called by engine/enact.py when it dispatches, and by engine/views.py to check secrets."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, assert_never

from reconciler.engine.budgets import RunBudget, per_run
from reconciler.engine.mirror import AgentRec, TaskRec, World
from reconciler.repo.source import blob_ids
from reconciler.runtime.mission_tree import head_commit, tree_path
from reconciler.runtime.sandbox import Limits, MissionTree, Mount, Sandbox
from reconciler.runtime.types import DropCaps, LaunchRequest, OutcomeStatus, RayPlacement
from specs.fields import SecretRef, duration_seconds, size_bytes
from specs.models import AgentLimits, AgentSpec, DropLimits, ExecutorConfig
from specs.time_math import add_seconds


class MissingSecret(Exception):
    """A secret named by reference is not in the reconciler's environment."""


@dataclass(frozen=True, slots=True)
class Paths:
    repo: Path
    mc_dir: Path

    @property
    def work(self) -> Path:
        return self.mc_dir / "work"

    @property
    def drops(self) -> Path:
        return self.mc_dir / "drops"

    def drop_file(self, sha256: str) -> Path:
        return self.drops / sha256[:2] / sha256


def resolve_env(env: Mapping[str, str | SecretRef], environ: Mapping[str, str]) -> dict[str, str]:
    """Plain values as given; secrets read from the reconciler's environment by name."""
    out: dict[str, str] = {}
    for key, value in env.items():
        if isinstance(value, SecretRef):
            if value.from_env not in environ:
                raise MissingSecret(f"secret {value.from_env} is not set in mc's environment")
            out[key] = environ[value.from_env]
        else:
            out[key] = value
    return out


def per_run_cap(task: TaskRec, agent: AgentRec) -> Decimal | None:
    """The run's per-run cap: the smaller of the task's and the agent's (None: neither)."""
    return per_run(task.spec.budget.per_run_usd, agent.spec.budget.per_run_usd)


def spend_limit(budget: RunBudget) -> tuple[str | None, OutcomeStatus]:
    """How the runtime names the run's limit in an error, and what a run over it becomes: a
    run over its own cap (or estimate) failed; one that used up the rest of a daily cap may
    try again when there is budget."""
    match budget.kind:
        case "per_run" | "none":
            return None, "failed"
        case "estimate":
            return f"estimated_usd ${budget.limit} (its limit under a daily cap)", "failed"
        case "daily":
            return f"the ${budget.limit} left of the {budget.scope} daily cap", "retry"
        case _:
            assert_never(budget.kind)


def build_request(
    world: World,
    task: TaskRec,
    agent: AgentRec,
    run_id: str,
    paths: Paths,
    now: datetime,
    prompt: str | None = None,
    budget: RunBudget | None = None,
) -> LaunchRequest:
    """The run's request; `budget` (the scheduler's) sets what it may spend, else its per-run
    cap does."""
    seq = task.runs + 1
    timeout = duration_seconds(task.spec.timeout or agent.spec.timeout)
    workspace = paths.work / task.name / str(seq)
    sandbox = build_sandbox(world, task, agent.spec, paths, code_tree_commit(world, agent, paths))
    repo = sandbox.tree.path if sandbox and sandbox.tree else paths.repo  # what the agent sees
    command = tuple(
        arg.replace("{repo}", str(repo)).replace("{workspace}", str(workspace))
        for arg in agent.spec.command
    )
    env = resolve_env(agent.spec.env, os.environ)
    secrets = tuple(
        env[k] for k, v in agent.spec.env.items() if isinstance(v, SecretRef) and env[k]
    )
    heartbeat = agent.spec.heartbeat_timeout
    budget = budget or RunBudget(None, per_run_cap(task, agent), "per_run")
    cap_label, cap_status = spend_limit(budget)
    return LaunchRequest(
        run_id=run_id,
        task=task.name,
        attempt=task.runs + 1,  # the run's number for this task, like its workspace
        workspace=workspace,
        command=command,
        env={**env, "MC_REPO": str(repo)},
        protocol=agent.spec.protocol,
        task_json=task_json(
            world, task, agent, run_id, paths, add_seconds(now, timeout), prompt, repo
        ),
        timeout_s=timeout,
        heartbeat_timeout_s=duration_seconds(heartbeat) if heartbeat else None,
        per_run_cap_usd=budget.limit,
        cap_label=cap_label,
        cap_status=cap_status,
        secret_values=secrets,
        sandbox=sandbox,
        drop_limits=drop_caps(world.mission.drops),
        placement=ray_placement(world.mission.executor, agent.spec),
    )


DEFAULT_NAMESPACE = "mc"
_RAY_NAMES = {"num_cpus": "CPU", "num_gpus": "GPU"}


def ray_placement(mission: ExecutorConfig, spec: AgentSpec) -> RayPlacement | None:
    """The agent's executor (else the mission's) as a Ray placement; None for `local`. The
    agent's `resources` become Ray resource requests (memory in bytes; CPU 1 unless given)."""
    config = spec.executor or mission
    if config.kind != "ray":
        return None
    resources: dict[str, float] = {"CPU": 1.0}
    for key, amount in spec.resources.items():
        if key == "memory":
            resources["memory"] = float(size_bytes(str(amount)))
        else:
            resources[_RAY_NAMES.get(key) or key] = float(amount)
    namespace = config.namespace or DEFAULT_NAMESPACE
    return RayPlacement(config.address or "auto", namespace, resources)


def drop_caps(limits: DropLimits) -> DropCaps:
    """The mission's `drops:` in bytes, as the runtime checks them."""
    return DropCaps(size_bytes(limits.max_file), size_bytes(limits.max_run), limits.max_files)


def build_sandbox(
    world: World, task: TaskRec, spec: AgentSpec, paths: Paths, commit: str | None = None
) -> Sandbox | None:
    """How the run is confined: the agent's `sandbox` (else the mission's), None for `none`.

    The agent reads a mission tree (`commit`, else the applied commit, else HEAD) exported
    under .mc/trees/, the upstream drops it is handed, and the paths its spec declares.
    """
    if (spec.sandbox or world.mission.sandbox) == "none":
        return None
    commit = commit or world.commit or head_commit(paths.repo)
    tree = MissionTree(paths.repo, commit, tree_path(paths.mc_dir, commit)) if commit else None
    drops = {
        paths.drop_file(d.sha256) for dep in task.spec.depends_on for d in world.drops.get(dep, [])
    }
    return Sandbox(
        tree=tree,
        read_only=tuple(sorted(drops)),
        mounts=tuple(Mount(Path(m.path), m.mode == "rw") for m in spec.mounts),
        network=spec.network == "host",
        limits=sandbox_limits(spec.limits),
        protected=(paths.repo,),
    )


def code_tree_commit(world: World, agent: AgentRec, paths: Paths) -> str | None:
    """The commit whose tree the agent must see instead of the applied one, or None.

    The applied commit moves on while an update of the agent waits for approval; when that
    update changes the code the agent runs (`spec.code_blobs`), the applied tree holds code
    nobody approved, so the agent sees the tree its own spec was applied at: the approved code.
    """
    code = agent.spec.code_blobs
    if not code or world.commit is None or agent.commit in (None, world.commit):
        return None
    if blob_ids(paths.repo, world.commit, sorted(code)) == code:
        return None
    return agent.commit


def sandbox_limits(limits: AgentLimits) -> Limits:
    """The agent's `limits:` as setrlimit values."""
    return Limits(
        memory_bytes=size_bytes(limits.memory) if limits.memory else None,
        processes=limits.processes,
        open_files=limits.open_files,
        file_size_bytes=size_bytes(limits.file_size),
        cpu_seconds=math.ceil(duration_seconds(limits.cpu_time)) if limits.cpu_time else None,
    )


def task_json(
    world: World,
    task: TaskRec,
    agent: AgentRec,
    run_id: str,
    paths: Paths,
    deadline: datetime,
    prompt: str | None = None,
    repo: Path | None = None,
) -> dict[str, Any]:
    """What the agent reads: the work, its inputs, upstream results, memory. Never secrets."""
    spec = task.spec
    upstream = {}
    for dep in spec.depends_on:
        rec = world.tasks.get(dep)
        upstream[dep] = {
            "output": rec.output if rec else None,
            "outputs": (rec.outputs if rec else None) or {},
            "drops": [
                {
                    "path": d.path,
                    "sha256": d.sha256,
                    "size": d.size,
                    "media_type": d.media_type,
                    "file": str(paths.drop_file(d.sha256)),
                }
                for d in world.drops.get(dep, [])
            ],
        }
    return {
        "run_id": run_id,
        "task": task.name,
        "attempt": task.runs + 1,
        "title": spec.title,
        "prompt": spec.prompt if prompt is None else prompt,
        "inputs": spec.inputs,
        "agent": {"name": agent.name, "role": agent.spec.role},
        "mission": world.mission_name,
        "deadline": deadline.isoformat() + "Z",
        "repo": str(repo or paths.repo),
        "upstream": upstream,
        "memory": {
            "agent": world.memory.get(f"agent:{agent.name}", {}),
            "task": world.memory.get(f"task:{task.name}", {}),
        },
        "feedback": task.feedback,
        "workflow": _workflow_info(world, task),
    }


def _workflow_info(world: World, task: TaskRec) -> dict[str, Any] | None:
    if task.step is None:
        return None
    run = world.runs[task.step.run]
    return {
        "run": run.name,
        "workflow": run.workflow,
        "step": task.step.step.id,
        "inputs": run.inputs,
        "rework": task.rework,
    }
