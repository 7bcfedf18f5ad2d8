"""Fixtures for the execution tests, defined (and type-checked) in exec_harness; git isolation
comes from tests/conftest.py."""

from exec_harness import repo as repo
