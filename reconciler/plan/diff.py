"""Field-level differences between two specs, for `~` lines in the plan and for policy matches."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class FieldChange:
    path: str  # dotted, from the document root: spec.command, metadata.labels.team
    old: Any
    new: Any


def diff_specs(old: dict[str, Any], new: dict[str, Any], prefix: str = "spec") -> list[FieldChange]:
    """Changed leaves, depth-first in key order; lists compare as whole values."""
    changes: list[FieldChange] = []
    for key in sorted(old.keys() | new.keys()):
        path = f"{prefix}.{key}"
        a, b = old.get(key, _MISSING), new.get(key, _MISSING)
        if a == b:
            continue
        if isinstance(a, dict) and isinstance(b, dict):
            changes.extend(diff_specs(a, b, path))
        else:
            changes.append(
                FieldChange(path, None if a is _MISSING else a, None if b is _MISSING else b)
            )
    return changes


class _Missing:
    def __repr__(self) -> str:
        return "<missing>"


_MISSING: Any = _Missing()
