"""The base of every per-table-family store class: the shared `Database` and JSON encoding."""

from __future__ import annotations

import json
from typing import Any

from state.db import Database


def compact_json(value: Any) -> str:
    """The text a JSON column is written with by the state interfaces: sorted and compact."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


class TableStore:
    """Reads or writes of one table family over one `Database`; StateReader/Writer mix them."""

    def __init__(self, db: Database) -> None:
        self.db = db
