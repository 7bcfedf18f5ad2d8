"""Money (US dollars, `Decimal`) as people and programs see it — one format everywhere:

- tables and pages (`mc runs`, `mc agents`, the dashboard): `money_text`, 2 decimals rounded
  half up (0.125 -> `$0.13`, as on a bill; never banker's rounding);
- JSON (`--json`, events, the dashboard's API): `money_json`, the full precision as a
  normalized decimal string (`"0.125"`, `"0"`, `"100"`), never a float.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

CENT = Decimal("0.01")


def as_decimal(value: Any) -> Decimal | None:
    """`value` (Decimal, int, float, or a decimal string) as a Decimal; None for None or ''.
    Raises ValueError for anything that is not a finite number."""
    if value is None or value == "":
        return None
    try:
        found = value if isinstance(value, Decimal) else Decimal(str(value))
    except InvalidOperation:
        raise ValueError(f"not an amount of money: {value!r}") from None
    if not found.is_finite():
        raise ValueError(f"not an amount of money: {value!r}")
    return found


def money_text(value: Any) -> str:
    """`$1,234.57`: 2 decimals, rounded half up; '-' for none."""
    found = as_decimal(value)
    if found is None:
        return "-"
    return f"${found.quantize(CENT, rounding=ROUND_HALF_UP):,.2f}"


def normalized(value: Decimal) -> Decimal:
    """`value` without trailing zeros (`0.250000` -> `0.25`, `100.00` -> `100`, never `1E+2`):
    what `str()` of an amount gives in JSON the dashboard's API serializes itself."""
    found = value.normalize()
    exponent = found.as_tuple().exponent
    if isinstance(exponent, int) and exponent > 0:
        found = found.quantize(Decimal(1))
    return found if found else Decimal(0)


def money_json(value: Any) -> str | None:
    """The full-precision normalized decimal string (`"0.125"`, not `"0.125000"`); None for
    none."""
    found = as_decimal(value)
    if found is None:
        return None
    text = format(found.normalize(), "f")
    return "0" if text in ("-0", "0") else text
