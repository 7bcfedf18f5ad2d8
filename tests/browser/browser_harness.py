"""Helpers for the browser tests: Debian's Chromium through Playwright, the app under uvicorn.

The dashboard is served by a real uvicorn on 127.0.0.1 (an ephemeral port) in a thread of
the test process, so a test can also hold the state open for writing and change it while a
page is open, as `mc serve` does. The mission comes from tests/api/dash_harness.py.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "api"))
from dash_harness import Mission, build_mission, git_env

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--no-proxy-server",  # every request goes to 127.0.0.1 directly
]


def require_browser() -> None:
    """Skip the module, loudly, when Chromium or Playwright for Python is not installed."""
    if not CHROMIUM.exists():
        pytest.skip(
            "BROWSER TESTS SKIPPED: /usr/bin/chromium is missing (apt-get install -y chromium)",
            allow_module_level=True,
        )
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        pytest.skip(
            "BROWSER TESTS SKIPPED: Playwright for Python is missing (pip install playwright)",
            allow_module_level=True,
        )


class LiveServer:
    """uvicorn serving `app` on 127.0.0.1:<ephemeral> in a thread, for one `with` block."""

    def __init__(self, app: Any) -> None:
        import uvicorn

        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=0,
            log_level="warning",
            lifespan="off",
            timeout_graceful_shutdown=1,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="dashboard", daemon=True)
        self.url = ""

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            assert self.thread.is_alive(), "uvicorn stopped while starting"
            assert time.monotonic() < deadline, "uvicorn did not start within 15 s"
            time.sleep(0.02)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)
        assert not self.thread.is_alive(), "uvicorn did not stop within 15 s"


class PageWatch:
    """Everything that went wrong on a page: console errors, failed requests, HTTP errors,
    and any JavaScript dialog (an alert() would mean user content ran as script)."""

    def __init__(self, page: Any, base: str) -> None:
        self.base = base
        self.problems: list[str] = []
        self.dialogs: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda err: self.problems.append(f"page error: {err}"))
        page.on("requestfailed", self._failed)
        page.on("response", self._response)
        page.on("dialog", self._dialog)

    def _console(self, msg: Any) -> None:
        if msg.type in ("error", "warning"):
            self.problems.append(f"console {msg.type}: {msg.text} at {msg.location}")

    def _failed(self, request: Any) -> None:
        failure = request.failure or ""
        # an EventSource cut by a navigation is how SSE ends, not a failed request
        if "/api/stream" in request.url and "ERR_ABORTED" in failure:
            return
        self.problems.append(f"request failed: {request.url} ({failure})")

    def _response(self, response: Any) -> None:
        if response.status >= 400:
            self.problems.append(f"HTTP {response.status}: {response.url}")
        if not response.url.startswith(self.base):
            self.problems.append(f"left 127.0.0.1: {response.url}")

    def _dialog(self, dialog: Any) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()


# --- fixtures (exposed by conftest.py) ---------------------------------------------------------


@pytest.fixture(scope="session")
def mission(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mission]:
    with git_env():
        yield build_mission(tmp_path_factory.mktemp("browser") / "mission")


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(10_000)
    try:
        yield context.new_page()
    finally:
        context.close()
