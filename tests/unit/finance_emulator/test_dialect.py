"""FO query dialect, category ids and staging defaults (pure parts)."""

from __future__ import annotations

import re

import pytest

from emulators.common.errors import ODataError
from emulators.finance.categories import category_id, shared_category_rows
from emulators.finance.entities import entity_named
from emulators.finance.forecasts import expense_pair_id
from emulators.finance.odata import parse_fo_query, rewrite_enum_literals
from emulators.finance.staging import line_property, offset_account

pytestmark = pytest.mark.unit


def test_enum_literals_become_plain_strings_outside_quotes() -> None:
    text = "ProjectStage eq Microsoft.Dynamics.DataEntities.ProjectStage'Finished'"
    assert rewrite_enum_literals(text) == "ProjectStage eq 'Finished'"
    untouched = "Name eq 'a.b''Microsoft.X''c'"
    assert rewrite_enum_literals(untouched) == untouched


def test_wildcard_in_eq_becomes_like_with_escaping() -> None:
    query = parse_fo_query({"$filter": "Name eq 'Con_toso*'"}, entity_named("CustomersV3"))
    assert "LIKE" in query.where and query.params == ["Con\\_toso%"]


def test_ne_wildcard_negates_the_match() -> None:
    query = parse_fo_query({"$filter": "Name ne '*x'"}, entity_named("CustomersV3"))
    assert "NOT LIKE" in query.where


def test_unknown_property_in_filter_is_a_400() -> None:
    with pytest.raises(ODataError) as err:
        parse_fo_query({"$filter": "Colour eq 'red'"}, entity_named("CustomersV3"))
    assert err.value.status == 400


def test_category_ids_look_like_fo_ones_and_are_stable() -> None:
    cid = category_id(1000, "seed")
    assert re.fullmatch(r"TCN-0000001000-[0-9A-F]{5}", cid)
    assert category_id(1000, "seed") == cid != category_id(1001, "seed")


def test_shared_categories_one_per_transaction_type() -> None:
    rows = shared_category_rows({"CategoryId": "TCN-1", "Name": "Design"})
    assert [(r["CategoryId"], r["TransactionType"]) for r in rows] == [
        ("TCN-1-1", "Hour"), ("TCN-1-2", "Fee"), ("TCN-1-3", "Item"), ("TCN-1-4", "Expense")]


def test_line_property_and_offset_account_defaults() -> None:
    assert line_property("Chargeable") == "Chargeable"
    assert line_property(None) == "NotSpecified"
    assert offset_account("Expense") == "ExpenseIntegration"
    assert offset_account("Material") == "ProcurementIntegration"
    assert offset_account("Time") == ""


def test_cost_and_sales_estimate_lines_share_a_pair_id() -> None:
    cost = {"dataAreaId": "usmf", "ProjectId": "P-1", "TaskId": "1", "TransactionCategory": "T",
            "DocumentDate": "2026-04-01T12:00:00Z", "TransType": "Cost", "Price": 1}
    sales = {**cost, "TransType": "Sales", "Price": 2}
    assert expense_pair_id(cost) == expense_pair_id(sales)
    assert expense_pair_id(cost) != expense_pair_id({**cost, "TaskId": "2"})
