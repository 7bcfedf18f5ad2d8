"""Fixtures for the dashboard tests (one real mission applied once per session, served
read-only), defined (and type-checked) in dash_harness."""

from dash_harness import client as client
from dash_harness import mission as mission
from dash_harness import plain_client as plain_client
from dash_harness import state_copy as state_copy
