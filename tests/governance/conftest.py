"""Fixtures for the governance tests: approvers with real keys, an isolated GNUPGHOME, and a
mission repo that declares them; defined (and type-checked) in governance_harness. Git
isolation comes from tests/conftest.py."""

from governance_harness import alice as alice
from governance_harness import bob as bob
from governance_harness import carol as carol
from governance_harness import dave as dave
from governance_harness import isolated_keys as isolated_keys
from governance_harness import mallory as mallory
from governance_harness import repo as repo
from governance_harness import ssh_keys as ssh_keys
from governance_harness import waiting as waiting
