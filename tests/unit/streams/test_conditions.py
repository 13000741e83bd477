"""Map filters with the operators of a dual-write filter (domain.md 3)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from streams.maps import Condition

pytestmark = pytest.mark.unit


def c(column: str, op: str, value: object = None) -> Condition:
    return Condition(column=column, op=op, value=value)  # type: ignore[arg-type]


@pytest.mark.parametrize(("op", "value", "holds"), [
    ("gt", 1000, True), ("ge", 1500, True), ("lt", 2000, True), ("le", 1499, False),
    ("eq", 1500, True), ("ne", 1500, False), ("in", (1, 1500), True), ("in", (1, 2), False),
])
def test_comparisons(op: str, value: object, holds: bool) -> None:
    assert c("numberofemployees", op, value).holds({"numberofemployees": 1500}) is holds


def test_a_range_with_and_or_and_not() -> None:
    """FO's ``((numberofemployees > 1000) && (numberofemployees <= 2000))``, or a customer
    (accounttype 3) that is not on hold."""
    in_range = Condition(op="all", clauses=(c("numberofemployees", "gt", 1000), c("numberofemployees", "le", 2000)))
    assert in_range.holds({"numberofemployees": 2000}) and not in_range.holds({"numberofemployees": 2001})
    either = Condition(op="any", clauses=(in_range, c("accounttype", "eq", "3")))
    assert either.holds({"numberofemployees": 5, "accounttype": "3"})
    assert not either.holds({"numberofemployees": 5, "accounttype": "1"})
    not_on_hold = Condition(op="not", clauses=(c("onhold", "eq", True),))
    assert not_on_hold.holds({"onhold": False}) and not not_on_hold.holds({"onhold": True})


def test_a_value_the_filter_cannot_judge_is_not_synced() -> None:
    assert not c("numberofemployees", "gt", 1000).holds({})  # missing
    assert not c("numberofemployees", "gt", 1000).holds({"numberofemployees": "many"})  # no order
    assert c("x", "absent").holds({"x": ""}) and not c("x", "absent").holds({"x": "y"})
    assert c("x", "present").holds({"x": 0})


@pytest.mark.parametrize("bad", [
    {"op": "all"},  # a composite without clauses
    {"op": "not", "clauses": ({"column": "a", "op": "present"}, {"column": "b", "op": "present"})},
    {"op": "eq", "value": 1},  # no column
    {"column": "a", "op": "any", "clauses": ({"column": "a", "op": "present"},)},
    {"column": "a", "op": "between", "value": 1},
])
def test_malformed_conditions_are_refused_when_declared(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        Condition.model_validate(bad)
