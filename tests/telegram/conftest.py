"""Fixtures for the Telegram tests: SSH keys for the approvers, a Bot API stand-in on loopback
and a mission repo pointing the bot at it; defined (and type-checked) in tg_harness. Git
isolation comes from tests/conftest.py."""

from tg_harness import keys as keys
from tg_harness import loopback_only as loopback_only
from tg_harness import repo as repo
from tg_harness import standin as standin
