"""Field types shared by every kind: names, durations, sizes, money, secret references."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PlainSerializer

NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DURATION_PATTERN = r"^[0-9]+(\.[0-9]+)?(ms|s|m|h|d)$"
ENV_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
SIZE_PATTERN = r"^[0-9]+(Ki|Mi|Gi|Ti)?$"

Name = Annotated[
    str,
    Field(
        pattern=NAME_PATTERN,
        max_length=63,
        description="DNS-label-like name: lowercase letters, digits and '-', at most 63 characters",
    ),
]

# Upper bounds of every duration, size and amount a mission file may hold (README, "The
# mission repo"). Far beyond any sane setting, far inside what time arithmetic, setrlimit and
# the state's DECIMAL(18, 6) columns can hold.
MAX_DURATION = "366d"
MAX_SIZE = "1024Ti"
MAX_USD = Decimal(1_000_000)
_MAX_TEXT = 32  # characters of a duration or size: no digit string may grow without bound


def _within_max_duration(value: str) -> str:
    if duration_seconds(value) > duration_seconds(MAX_DURATION):
        raise ValueError(f"duration {value} is longer than the maximum {MAX_DURATION}")
    return value


def _within_max_size(value: str) -> str:
    if size_bytes(value) > size_bytes(MAX_SIZE):
        raise ValueError(f"size {value} is larger than the maximum {MAX_SIZE}")
    return value


Duration = Annotated[
    str,
    Field(
        pattern=DURATION_PATTERN,
        max_length=_MAX_TEXT,
        description=f"A duration such as 90s, 10m, 2h, 1d (at most {MAX_DURATION})",
    ),
    AfterValidator(_within_max_duration),
]

Size = Annotated[
    str,
    Field(
        pattern=SIZE_PATTERN,
        max_length=_MAX_TEXT,
        description=(
            f"A size in bytes, or with a binary unit: 512Ki, 25Mi, 2Gi, 1Ti (at most {MAX_SIZE})"
        ),
    ),
    AfterValidator(_within_max_size),
]


def _plain_decimal(value: Decimal) -> str:
    """'5', '5.0' and '5.00' are one amount: dump them alike so the spec digest agrees."""
    return format(value.normalize(), "f")


Money = Annotated[
    Decimal,
    Field(ge=0, le=MAX_USD, max_digits=14, decimal_places=6, description="USD, at most 1000000"),
    PlainSerializer(_plain_decimal, return_type=str, when_used="json"),
]
Risk = Literal["LOW", "HIGH", "RED"]
Decision = Literal["LOW", "HIGH", "RED", "DENY"]

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION_RE = re.compile(DURATION_PATTERN)


def duration_seconds(value: str) -> float:
    """Seconds in a validated duration string ('90s' -> 90.0)."""
    match = _DURATION_RE.match(value)
    if match is None:
        raise ValueError(f"not a duration: {value!r} (use e.g. 90s, 10m, 2h)")
    unit = match.group(2)
    return float(value[: -len(unit)]) * _UNITS[unit]


_SIZE_UNITS = {"": 1, "Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30, "Ti": 1 << 40}
_SIZE_RE = re.compile(SIZE_PATTERN)


def size_bytes(value: str) -> int:
    """Bytes in a validated size string ('25Mi' -> 26214400)."""
    match = _SIZE_RE.match(value)
    if match is None:
        raise ValueError(f"not a size: {value!r} (use e.g. 512Ki, 25Mi, 2Gi)")
    unit = match.group(1) or ""
    return int(value[: len(value) - len(unit)]) * _SIZE_UNITS[unit]


class Strict(BaseModel):
    """Base of every spec model: unknown fields are errors and parsed specs never change."""

    # defer_build: a warm `mc plan` validates almost nothing, so building every validator at
    # import (~70 ms) would be wasted; each model builds on first use instead.
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


class SecretRef(Strict):
    """A secret named by reference; its value is read from the reconciler's environment."""

    from_env: Annotated[str, Field(pattern=ENV_NAME_PATTERN)]
