"""Fixtures for the workflows-mission tests (the mission applied once, shared by the module),
defined (and type-checked) in workflow_harness."""

from workflow_harness import applied as applied
from workflow_harness import fresh as fresh
from workflow_harness import sample_digest as sample_digest
