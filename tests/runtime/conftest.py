"""Fixtures for the runtime tests (a LocalExecutor with a short grace, an agent writer),
defined (and type-checked) in runtime_harness."""

from runtime_harness import agents as agents
from runtime_harness import executor as executor
