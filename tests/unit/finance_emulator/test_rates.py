"""Exchange-rate lookup and journal period keys."""

from __future__ import annotations

import pytest

from emulators.finance.rates import find_rate, period_key, to_mst

pytestmark = pytest.mark.unit

RATES: list[dict[str, object]] = [
    {"FromCurrency": "EUR", "ToCurrency": "USD", "ValidFrom": "2025-01-01T12:00:00Z",
     "ValidTo": "2025-12-31T12:00:00Z", "Rate": 1.05},
    {"FromCurrency": "EUR", "ToCurrency": "USD", "ValidFrom": "2026-01-01T12:00:00Z",
     "ValidTo": None, "Rate": 1.10},
]


def test_same_currency_is_rate_one() -> None:
    assert find_rate([], "USD", "USD", "2026-01-01") == 1.0


def test_rate_valid_on_the_document_date_wins() -> None:
    assert find_rate(RATES, "EUR", "USD", "2025-06-30T12:00:00Z") == 1.05
    assert find_rate(RATES, "EUR", "USD", "2026-06-30") == 1.10


def test_missing_rate_is_none() -> None:
    assert find_rate(RATES, "EUR", "USD", "2024-12-31") is None
    assert find_rate(RATES, "USD", "EUR", "2026-06-30") is None


def test_to_mst_rounds_to_cents() -> None:
    assert to_mst(None, 2.0) == 0.0
    assert to_mst(800, 1.085) == 868.0


@pytest.mark.parametrize(("unit", "expected"), [("Days", "2026-03-15"), ("Months", "2026-03"),
                                                ("Years", "2026"), ("All", "All")])
def test_period_key_per_period_unit(unit: str, expected: str) -> None:
    assert period_key("2026-03-15T12:00:00Z", unit) == expected


def test_unknown_period_unit_is_refused() -> None:
    with pytest.raises(ValueError, match="Period unit"):
        period_key("2026-03-15", "Weeks")
