"""Fixtures for every test folder: each test runs with an isolated git identity and config
(defined, and type-checked, in helpers.git)."""

from helpers.git import isolated_env as isolated_env
