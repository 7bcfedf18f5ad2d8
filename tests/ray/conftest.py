"""Fixtures for the Ray executor's tests (a loopback Ray cluster per module, an executor,
agent requests), defined (and type-checked) in ray_harness."""

from ray_harness import namespace as namespace
from ray_harness import ray_agents as ray_agents
from ray_harness import ray_cluster as ray_cluster
from ray_harness import ray_executor as ray_executor
