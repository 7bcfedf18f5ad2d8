"""Fixtures for the core tests (scaffolded mission repos), defined (and type-checked) in
core_harness; git isolation comes from tests/conftest.py."""

from core_harness import applied_repo as applied_repo
from core_harness import mission_repo as mission_repo
