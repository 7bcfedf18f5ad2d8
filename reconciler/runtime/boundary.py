"""The one boundary everything an agent returns crosses (DESIGN §9): result.json, cost.json and
the claude-code JSON are parsed here into strict, bounded values; adapters.py, cost.py and
drop_store.py use it, and engine/engine.py checks every Outcome with `checked_outcome` before a
byte of it reaches a write batch (so recovery, which goes through the same tick, does too).

The rules, each refusal a one-line reason naming the field (the run fails, permanently):

- JSON is UTF-8, without NaN/Infinity, duplicate keys or numbers Python cannot hold; nesting
  is at most MAX_DEPTH levels (deeper documents are refused without a RecursionError).
- Strings (values and keys) are valid Unicode: no lone surrogates (`"\\ud800"`).
- Integers fit in 64 bits, floats are finite; cost_usd is 0..MAX_COST_USD, kept to 6 decimals
  (the state's DECIMAL(18, 6)); tokens are 0..MAX_TOKENS.
- outputs and each memory scope have at most MAX_KEYS keys of at most MAX_KEY_CHARS
  characters; memory is at most MAX_MEMORY_BYTES as JSON.
- Drop paths are valid UTF-8 without control characters.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import replace
from decimal import ROUND_HALF_EVEN, Decimal
from itertools import repeat
from typing import Any

from .types import Outcome

MAX_DEPTH = 64
MAX_COST_USD = Decimal(1_000_000)
COST_QUANTUM = Decimal("0.000001")  # DECIMAL(18, 6)
MAX_TOKENS = 2**53
MAX_INT = 2**63 - 1  # free-form numbers (output, outputs, memory)
MAX_KEYS = 1000
MAX_KEY_CHARS = 256
MAX_MEMORY_BYTES = 1024 * 1024

_SURROGATE = re.compile("[\ud800-\udfff]")
_CONTROL = re.compile("[\x00-\x1f\x7f]")


class Refused(Exception):
    """What an agent returned does not cross the boundary; str(exc) is the one-line reason."""


# --- JSON -------------------------------------------------------------------------------------


def _no_constants(name: str) -> Any:
    raise Refused(f"{name} is not a JSON number")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found = dict(pairs)
    if len(found) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise Refused(f"key {_show_key(key)} appears twice in one object")
            seen.add(key)
    return found


def load_json(
    data: bytes | str,
    what: str,
    parse_float: Callable[[str], Any] = float,
    parse_int: Callable[[str], Any] = int,
) -> Any:
    """Parse `data` strictly and check the value (check_value); raise Refused with a one-line
    reason starting with `what` (a file name). `parse_int=Decimal` leaves the range of a
    number to the caller (cost.json names its own limit)."""
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
        value = json.loads(
            text,
            parse_constant=_no_constants,
            object_pairs_hook=_no_duplicates,
            parse_float=parse_float,
            parse_int=parse_int,
        )
    except RecursionError:
        raise Refused(f"{what} is nested deeper than {MAX_DEPTH} levels") from None
    except Refused as exc:
        raise Refused(f"{what} is not valid JSON: {exc}") from None
    except UnicodeDecodeError as exc:
        raise Refused(
            f"{what} is not valid JSON: not UTF-8 ({exc.reason} at byte {exc.start})"
        ) from None
    except ValueError as exc:  # JSONDecodeError, or an integer too long to convert
        raise Refused(f"{what} is not valid JSON: {exc}") from None
    try:
        check_value(value, "")
    except Refused as exc:
        raise Refused(f"{what}: {exc}") from None
    return value


# --- values -----------------------------------------------------------------------------------


def _show_key(key: object) -> str:
    text = str(key)
    text = text if len(text) <= 40 else text[:39] + "…"
    return ascii(text)[1:-1] if _SURROGATE.search(text) or _CONTROL.search(text) else text


def _where(top: str, path: tuple[object, ...]) -> str:
    """`output.a[2]`: the field a value is at (`top` names the root; empty: the top level)."""
    out = top
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else f".{_show_key(part)}"
    return out.removeprefix(".") or "(top level)"


def check_text(text: str, where: str) -> None:
    """A string is valid Unicode (no lone surrogate, which no UTF-8 store can hold)."""
    found = _SURROGATE.search(text)
    if found is not None:
        raise Refused(
            f"{where} is not valid Unicode (a lone surrogate at character {found.start()})"
        )


def _plainly_sound(value: Any) -> bool:
    """The fast pass (no paths kept): True when every node of a plain JSON value (dict, list,
    str, int, float, bool, None) is within the bounds; False sends it to the slow pass."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_DEPTH:
            return False
        kind = type(item)
        if kind is str:
            if _SURROGATE.search(item):
                return False
        elif kind is int:
            if not -MAX_INT <= item <= MAX_INT:
                return False
        elif kind is float:
            if not math.isfinite(item):
                return False
        elif kind is dict:
            for key, sub in item.items():
                if type(key) is not str or _SURROGATE.search(key):
                    return False
                stack.append((sub, depth + 1))
        elif kind is list:
            stack.extend(zip(item, repeat(depth + 1)))
        elif item is not None and kind is not bool:
            return False
    return True


def check_value(value: Any, top: str) -> None:
    """A JSON value within the bounds (module doc), walked without recursion; `top` names it."""
    if _plainly_sound(value):
        return
    stack: list[tuple[Any, tuple[object, ...]]] = [(value, ())]
    while stack:
        item, path = stack.pop()
        if len(path) > MAX_DEPTH:
            raise Refused(f"{_where(top, path[:3])} is nested deeper than {MAX_DEPTH} levels")
        if item is None or isinstance(item, bool):
            continue
        if isinstance(item, str):
            check_text(item, _where(top, path))
        elif isinstance(item, int):
            if abs(item) > MAX_INT:
                raise Refused(
                    f"{_where(top, path)} is an integer out of range (64 bits: ±{MAX_INT})"
                )
        elif isinstance(item, float | Decimal):
            if not (item.is_finite() if isinstance(item, Decimal) else math.isfinite(item)):
                raise Refused(f"{_where(top, path)} is not a finite number")
        elif isinstance(item, dict):
            for key, sub in item.items():
                if not isinstance(key, str):
                    raise Refused(f"{_where(top, path)} has a key that is not a string")
                check_text(key, f"a key of {_where(top, path)}")
                stack.append((sub, (*path, key)))
        elif isinstance(item, list | tuple):
            stack.extend((sub, (*path, i)) for i, sub in enumerate(item))
        else:
            raise Refused(f"{_where(top, path)} is not a JSON value ({type(item).__name__})")


def check_keys(mapping: Mapping[str, Any], where: str) -> None:
    if len(mapping) > MAX_KEYS:
        raise Refused(f"{where} has {len(mapping)} keys; limit {MAX_KEYS}")
    for key in mapping:
        if len(key) > MAX_KEY_CHARS:
            raise Refused(f"{where} has a key of {len(key)} characters; limit {MAX_KEY_CHARS}")


def check_memory(memory: Mapping[str, Any], where: str) -> None:
    """memory: {agent: {k: v}, task: {k: v}}, bounded in keys and total size."""
    check_keys(memory, where)
    for scope, updates in memory.items():
        if isinstance(updates, dict):
            check_keys(updates, f"{where}.{_show_key(scope)}")
    size = len(json.dumps(memory, default=str).encode("utf-8"))
    if size > MAX_MEMORY_BYTES:
        raise Refused(f"{where} is {size} bytes as JSON; limit {MAX_MEMORY_BYTES}")


# --- numbers ----------------------------------------------------------------------------------


def bounded_cost(value: Decimal, where: str) -> Decimal:
    """A cost the state can store: finite, 0..MAX_COST_USD, at most 6 decimals (rounded)."""
    if not value.is_finite() or value < 0 or value > MAX_COST_USD:
        raise Refused(f"{where} must be a number from 0 to {MAX_COST_USD}")
    return six_decimals(value)


def six_decimals(value: Decimal) -> Decimal:
    """A finite cost rounded to the state's 6 decimals; kept as written when it has fewer."""
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -6:
        return value.quantize(COST_QUANTUM, rounding=ROUND_HALF_EVEN)
    return value


def bounded_tokens(value: int, where: str) -> int:
    if isinstance(value, bool) or not 0 <= value <= MAX_TOKENS:
        raise Refused(f"{where} must be an integer from 0 to {MAX_TOKENS}")
    return value


# --- drop names -------------------------------------------------------------------------------


def check_name(name: str) -> str | None:
    """Why a file name under out/ cannot be a drop path, or None: it must be valid UTF-8
    (os.scandir hands invalid bytes over as lone surrogates) without control characters."""
    if _SURROGATE.search(name):
        return "is not valid UTF-8"
    if _CONTROL.search(name):
        return "has a control character"
    return None


def show_name(path: str) -> str:
    """A path safe to put in a reason: undecodable bytes and control characters escaped."""
    if not (_SURROGATE.search(path) or _CONTROL.search(path)):
        return path
    text = path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return _CONTROL.sub(lambda found: ascii(found.group())[1:-1], text)


# --- the engine's check of a whole Outcome ----------------------------------------------------


def _outcome_problem(outcome: Outcome) -> str | None:
    try:
        bounded_cost(outcome.cost_usd, "cost_usd")
        bounded_tokens(outcome.tokens, "tokens")
        if outcome.error is not None:
            check_text(outcome.error, "error")
        check_value(outcome.output, "output")
        check_value(dict(outcome.outputs), "outputs")
        check_keys(outcome.outputs, "outputs")
        check_value(dict(outcome.memory), "memory")
        check_memory(outcome.memory, "memory")
        for drop in outcome.drops:
            why = check_name(drop.path)
            if why is not None:
                return f"drop out/{show_name(drop.path)} {why}"
    except Refused as exc:
        return str(exc)
    return None


def checked_outcome(outcome: Outcome) -> Outcome:
    """The outcome if every value in it can be stored; otherwise the run failed, with the
    reason, and nothing of what it returned (output, memory, drops, an unstorable number) is
    kept: one run's bad values can never make the batch write fail for the others."""
    problem = _outcome_problem(outcome)
    if problem is None:
        return outcome
    try:
        cost = bounded_cost(outcome.cost_usd, "cost_usd")
    except Refused:
        cost = Decimal(0)
    try:
        tokens = bounded_tokens(outcome.tokens, "tokens")
    except Refused:
        tokens = 0
    return replace(
        outcome,
        status="failed",
        error=f"mc refused what the run returned: {problem}"[:300],
        output=None,
        outputs={},
        memory={},
        drops=(),
        cost_usd=cost,
        tokens=tokens,
    )
