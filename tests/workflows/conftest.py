"""Fixtures for the workflow tests, defined (and type-checked) in wf_harness; git isolation
comes from tests/conftest.py."""

from wf_harness import repo as repo
