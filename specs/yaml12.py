"""YAML 1.2 core-schema meaning for mission files: which plain scalars are not text.

PyYAML resolves plain scalars by YAML 1.1, so `NO` and `on` become booleans, `0755` is octal
493, `12:30:00` is the number 45000 and `2024-01-01` a date: a value reaches an agent as
something other than what was written. Mission files are read by the YAML 1.2 core schema
instead (specs/loader.py installs it): `true`/`false` (any of three casings), `null`/`~`/empty,
decimal, `0o` and `0x` integers and 1.2 floats; every other plain scalar is text. Explicit
tags are limited to the core schema's (`!!str`, `!!int`, `!!float`, `!!bool`, `!!null`,
`!!seq`, `!!map`). Numbers that JSON cannot carry (beyond 64-bit integers, `.inf`, `.nan`,
`1e999`) are refused with the place they were written.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

import yaml
from yaml.constructor import ConstructorError, SafeConstructor

BOOL = "tag:yaml.org,2002:bool"
INT = "tag:yaml.org,2002:int"
FLOAT = "tag:yaml.org,2002:float"
NULL = "tag:yaml.org,2002:null"
MERGE = "tag:yaml.org,2002:merge"

_BOOL_RE = re.compile(r"^(?:true|True|TRUE|false|False|FALSE)\Z")
_NULL_RE = re.compile(r"^(?:~|null|Null|NULL|)\Z")
_INT_RE = re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)\Z")
_FLOAT_RE = re.compile(
    r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
    r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))\Z"
)
_MERGE_RE = re.compile(r"^<<\Z")
MAX_INT = 2**63 - 1  # what a JSON reader, DuckDB and most languages hold without loss
_MAX_DIGITS = 64  # a longer number is refused before Python's int() is asked to parse it

# (tag, pattern, first characters) in the order they are tried; int before float, so that
# `10` is an integer
_IMPLICIT: list[tuple[str, re.Pattern[str], str | None]] = [
    (BOOL, _BOOL_RE, "tTfF"),
    (NULL, _NULL_RE, "~nN"),
    (INT, _INT_RE, "-+0123456789"),
    (FLOAT, _FLOAT_RE, "-+.0123456789"),
    (MERGE, _MERGE_RE, "<"),
]


def core_resolvers() -> dict[Any, list[tuple[str, re.Pattern[str]]]]:
    """PyYAML's `yaml_implicit_resolvers` table for the YAML 1.2 core schema."""
    table: dict[Any, list[tuple[str, re.Pattern[str]]]] = {"": [(NULL, _NULL_RE)]}
    for tag, pattern, first in _IMPLICIT:
        for ch in first or [None]:
            table.setdefault(ch, []).append((tag, pattern))
    return table


def _scalar(loader: SafeConstructor, node: yaml.Node) -> str:
    value = loader.construct_scalar(node)  # type: ignore[arg-type]
    assert isinstance(value, str)
    return value


def _refuse(node: yaml.Node, problem: str) -> ConstructorError:
    return ConstructorError(None, None, problem, node.start_mark)


def shown(text: str, limit: int = 40) -> str:
    """`text` as written, cut to `limit` characters for a one-line message."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def construct_bool(loader: SafeConstructor, node: yaml.Node) -> bool:
    text = _scalar(loader, node)
    if not _BOOL_RE.match(text):
        raise _refuse(node, f"{shown(text)!r} is not a YAML 1.2 boolean (true or false)")
    return text.lower() == "true"


def construct_null(loader: SafeConstructor, node: yaml.Node) -> None:
    text = _scalar(loader, node)
    if not _NULL_RE.match(text):
        raise _refuse(node, f"{shown(text)!r} is not a YAML 1.2 null (null or ~)")


def construct_int(loader: SafeConstructor, node: yaml.Node) -> int:
    text = _scalar(loader, node)
    if not _INT_RE.match(text):
        raise _refuse(node, f"{shown(text)!r} is not a YAML 1.2 integer")
    too_big = f"integer {shown(text)} is beyond 64 bits; quote it to keep it as text"
    if len(text) > _MAX_DIGITS:
        raise _refuse(node, too_big)
    value = int(text[2:], 8 if text[1] == "o" else 16) if text[:2] in ("0o", "0x") else int(text)
    if abs(value) > MAX_INT:
        raise _refuse(node, too_big)
    return value


def construct_float(loader: SafeConstructor, node: yaml.Node) -> float:
    text = _scalar(loader, node)
    if not _FLOAT_RE.match(text):
        raise _refuse(node, f"{shown(text)!r} is not a YAML 1.2 number")
    if text.lower().endswith((".nan", ".inf")) or not math.isfinite(float(text)):
        problem = f"{shown(text)} is not a finite number a JSON reader can hold; quote it"
        raise _refuse(node, problem)
    return float(text)


def core_constructors(base: dict[Any, Any]) -> dict[Any, Any]:
    """`base` (PyYAML's safe constructors) cut down to the core schema, scalars by 1.2."""
    keep = ("tag:yaml.org,2002:str", "tag:yaml.org,2002:seq", "tag:yaml.org,2002:map", None)
    table = {tag: base[tag] for tag in keep}
    table.update({BOOL: construct_bool, NULL: construct_null, INT: construct_int})
    table[FLOAT] = construct_float
    return table


def yaml11_reading(text: str) -> tuple[bool, Any]:
    """How a YAML 1.1 reader (PyYAML's safe loader) takes the plain scalar `text`:
    (True, value), or (False, None) when it cannot construct it at all."""
    tag = _YAML11.resolve(yaml.ScalarNode, text, (True, False))  # type: ignore[no-untyped-call]
    try:
        return True, _YAML11.construct_object(yaml.ScalarNode(tag, text))
    except (yaml.YAMLError, ValueError, TypeError, OverflowError):
        return False, None


_YAML11 = yaml.SafeLoader("")


class _QuotingDumper(yaml.SafeDumper):
    """Writes text that either YAML 1.1 or 1.2 would read as something else in quotes, so
    a file mc writes means the same to mc and to every other YAML reader."""


_QuotingDumper.yaml_implicit_resolvers = {
    first: [*yaml.SafeDumper.yaml_implicit_resolvers.get(first, []), *core]
    for first, core in core_resolvers().items()
} | {
    first: resolvers
    for first, resolvers in yaml.SafeDumper.yaml_implicit_resolvers.items()
    if first not in core_resolvers()
}


def dump(document: Any) -> str:
    """One YAML document (keys in their given order) that reads back, by YAML 1.1 or 1.2,
    as `document`."""
    return yaml.dump(document, Dumper=_QuotingDumper, sort_keys=False, allow_unicode=True)


def core_reading(text: str) -> tuple[bool, Any]:
    """How mission files take the plain scalar `text` (YAML 1.2 core): (True, value), or
    (False, None) when it is refused (a number JSON cannot carry)."""
    tag = next((tag for tag, pattern, _ in _IMPLICIT if pattern.match(text)), None)
    node = yaml.ScalarNode(tag or "tag:yaml.org,2002:str", text)
    builders: dict[str, Callable[[SafeConstructor, yaml.Node], Any]] = {
        BOOL: construct_bool,
        NULL: construct_null,
        INT: construct_int,
        FLOAT: construct_float,
    }
    build = builders.get(tag or "")
    try:
        return True, (build(_YAML11, node) if build else text)
    except yaml.YAMLError:
        return False, None
