"""`executor` and `resources` in the mission repo: what they parse to, the Ray placement they
become, and their risk (changing where an agent runs is HIGH)."""

from __future__ import annotations

from typing import Any

import pytest
from plan_data import NOW, agent, desired_of, mission, observed_of, row
from pydantic import ValidationError

from reconciler.engine.launch import ray_placement
from reconciler.plan.build import build_plan
from reconciler.runtime.types import RayPlacement
from specs.models import AgentSpec, ExecutorConfig, MissionSpec

AGENT_EXEC = "default: agent command/env"


def spec(**fields: Any) -> AgentSpec:
    return AgentSpec.model_validate({"command": ["python", "w.py"], **fields})


def test_agents_and_missions_without_them_dump_as_before() -> None:
    assert not {"executor", "resources"} & spec().model_dump().keys()
    assert MissionSpec().model_dump()["executor"] == {"kind": "local", "address": None}


def test_resources_become_ray_requests_and_the_agent_overrides_the_mission() -> None:
    on_ray = ExecutorConfig(kind="ray", address="10.0.0.1:6379")
    asked = spec(resources={"num_cpus": 2, "num_gpus": 0.5, "memory": "1Gi", "browser": 1})
    assert ray_placement(on_ray, asked) == RayPlacement(
        "10.0.0.1:6379",
        "mc",
        {"CPU": 2.0, "GPU": 0.5, "memory": float(1 << 30), "browser": 1.0},
    )
    own = spec(executor={"kind": "ray", "address": "auto", "namespace": "team-a"})
    assert ray_placement(ExecutorConfig(), own) == RayPlacement("auto", "team-a", {"CPU": 1.0})
    assert ray_placement(on_ray, spec(executor={"kind": "local"})) is None
    assert ray_placement(ExecutorConfig(), asked) is None  # resources mean nothing locally


@pytest.mark.parametrize(
    ("resources", "words"),
    [
        ({"num_cpus": -1}, "resources.num_cpus must be a number from 0"),
        ({"browser": "yes"}, "resources.browser must be a number"),
        ({"memory": "lots"}, "resources.memory is a size"),
        ({"bad name!": 1}, "should match pattern"),
    ],
)
def test_bad_resources_are_refused_naming_them(resources: dict[str, Any], words: str) -> None:
    with pytest.raises(ValidationError, match=words):
        spec(resources=resources)


def test_moving_an_agent_to_another_executor_is_high() -> None:
    before = agent(executor={"kind": "ray", "address": "10.0.0.1:6379"})
    after = agent(executor={"kind": "ray", "address": "203.0.113.9:6379"})
    m = mission("alice")
    plan = build_plan(desired_of([m, after]), observed_of([m, before]), NOW)
    assert [row(a) for a in plan.actions] == [
        ("update", "Agent", "writer", "HIGH", AGENT_EXEC, "needs_approval")
    ]
    resized = agent(executor={"kind": "ray", "address": "10.0.0.1:6379"}, resources={"CPU": 2})
    plan = build_plan(desired_of([m, resized]), observed_of([m, before]), NOW)
    assert [row(a)[3] for a in plan.actions] == ["LOW"]
