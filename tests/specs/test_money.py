"""specs/money.py: the one money format — tables round half up to cents, JSON keeps the full
precision as a normalized decimal string."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from specs.money import money_json, money_text, normalized


@pytest.mark.parametrize(
    ("value", "text", "json"),
    [
        (Decimal("0.125"), "$0.13", "0.125"),  # half up, not banker's $0.12
        (Decimal("0.125000"), "$0.13", "0.125"),
        (Decimal("0.115"), "$0.12", "0.115"),
        (Decimal("0.005"), "$0.01", "0.005"),
        (Decimal("0"), "$0.00", "0"),
        (Decimal("0.000000"), "$0.00", "0"),
        (Decimal("100"), "$100.00", "100"),
        (Decimal("1234.565"), "$1,234.57", "1234.565"),
        ("0.25", "$0.25", "0.25"),
        (1, "$1.00", "1"),
        (None, "-", None),
    ],
)
def test_money(value: Any, text: str, json: str | None) -> None:
    assert (money_text(value), money_json(value)) == (text, json)


@pytest.mark.parametrize("value", ["NaN", "Infinity", "a dollar", float("inf")])
def test_what_is_not_money_is_refused(value: Any) -> None:
    with pytest.raises(ValueError, match="not an amount of money"):
        money_text(value)


@pytest.mark.parametrize(
    ("value", "shown"),
    [("0.250000", "0.25"), ("100.00", "100"), ("0.000000", "0"), ("1.5", "1.5")],
)
def test_normalized_amounts_print_without_trailing_zeros_or_exponents(
    value: str, shown: str
) -> None:
    found = normalized(Decimal(value))
    assert (str(found), found) == (shown, Decimal(value))
