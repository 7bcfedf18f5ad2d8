"""Fixtures for the browser tests: the test mission, one headless Chromium, a page per test."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from browser_harness import CHROMIUM, CHROMIUM_ARGS
from dash_harness import Mission, build_mission, git_env


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
