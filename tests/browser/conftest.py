"""Fixtures for the browser tests (the test mission, one headless Chromium, a page per test),
defined (and type-checked) in browser_harness."""

from browser_harness import browser as browser
from browser_harness import mission as mission
from browser_harness import page as page
