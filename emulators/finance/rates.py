"""Exchange rates and accounting periods: pure functions used by import and posting.

FO converts a project transaction to the legal entity's accounting currency with the rate valid
on the document date; a missing rate stops the import of that actual (the job logs an error and
leaves the staging row unprocessed).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

__all__ = ["PERIOD_UNITS", "find_rate", "period_key", "to_mst"]

PERIOD_UNITS = ("Days", "Months", "Years", "All")


def _day(value: object) -> str:
    return str(value)[:10]


def find_rate(rates: Iterable[Mapping[str, object]], from_currency: str, to_currency: str,
              on: object) -> float | None:
    """The rate converting ``from_currency`` to ``to_currency`` valid on date ``on``.

    1.0 for the same currency; among matching rows the latest ``ValidFrom`` wins; an open
    ``ValidTo`` means valid until further notice. None when no rate applies.
    """
    if from_currency == to_currency:
        return 1.0
    day = _day(on)
    best: tuple[str, float] | None = None
    for r in rates:
        if r.get("FromCurrency") != from_currency or r.get("ToCurrency") != to_currency:
            continue
        start = _day(r.get("ValidFrom"))
        end = r.get("ValidTo")
        if start > day or (end is not None and _day(end) < day):
            continue
        if best is None or start > best[0]:
            best = (start, float(r["Rate"]))  # type: ignore[arg-type]
    return None if best is None else best[1]


def to_mst(amount: object, rate: float) -> float:
    """Accounting-currency amount, rounded to cents like FO's currency rounding."""
    return round(float(amount or 0.0) * rate, 2)  # type: ignore[arg-type]


def period_key(day: object, unit: str) -> str:
    """Journal grouping key for the *Period unit* parameter (Days | Months | Years | All)."""
    text = _day(day)
    if unit == "Days":
        return text
    if unit == "Months":
        return text[:7]
    if unit == "Years":
        return text[:4]
    if unit == "All":
        return "All"
    raise ValueError(f"Period unit must be one of {', '.join(PERIOD_UNITS)}, not '{unit}'.")
