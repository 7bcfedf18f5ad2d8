"""Fixtures: an execution test repo, defined (and type-checked) in helpers.exec_repo; git
isolation comes from tests/conftest.py."""

from helpers.exec_repo import repo as repo
