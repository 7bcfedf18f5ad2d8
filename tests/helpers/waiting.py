"""Bounded polling for tests: wait for a condition, fail with what was awaited (a hang guard)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

POLL_S = 0.05


def wait_until(
    find: Callable[[], Any],
    timeout: float = 15.0,
    what: str = "condition",
    context: Callable[[], str] | None = None,
) -> Any:
    """Poll `find` until it returns something truthy and return it; after `timeout` seconds,
    fail naming `what` (and `context()`, what the test knew by then).

    Typed `Any`: tests find things with `and` chains (`(p := find()) and p.ok and p`)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = find()
        if found:
            return found
        time.sleep(POLL_S)
    detail = f"; {context()}" if context is not None else ""
    raise AssertionError(f"timed out after {timeout}s waiting for {what}{detail}")


def wait_for(check: Callable[[], bool], within: float, what: str) -> None:
    """Poll `check` until true; fail with `what` after `within` seconds."""
    wait_until(check, within, what)
