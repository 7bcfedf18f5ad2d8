"""Fixtures: the `mc init` starter repo, defined (and type-checked) in helpers.starter; git
isolation comes from tests/conftest.py."""

from helpers.exec_repo import repo as repo
from helpers.starter import applied_repo as applied_repo
from helpers.starter import mission_repo as mission_repo
