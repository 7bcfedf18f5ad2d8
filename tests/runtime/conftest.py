"""Fixtures for the runtime tests: a LocalExecutor with a short grace, and an agent writer."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from runtime_harness import GRACE_S, Agents

from reconciler.runtime.local import LocalExecutor


@pytest.fixture
def executor() -> Iterator[LocalExecutor]:
    ex = LocalExecutor(grace_s=GRACE_S)
    yield ex
    ex.shutdown(grace_s=GRACE_S)


@pytest.fixture
def agents(tmp_path: Path) -> Agents:
    return Agents(tmp_path)
