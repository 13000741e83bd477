"""OData query options -> SQLite: translation, parameters, refusals."""

from __future__ import annotations

import sqlite3
from contextlib import closing

import pytest

from emulators.common.errors import ODataError
from emulators.common.query import normalise_datetime, parse_filter, parse_query

pytestmark = pytest.mark.unit
COLUMNS = {"name": "name", "statecode": "statecode", "_msdyn_company_value": "msdyn_company",
           "modifiedon": "modifiedon", "msdyn_isleaf": "msdyn_isleaf", "amount": "amount"}


def _rows(where: str, params: list[object]) -> list[str]:
    with closing(sqlite3.connect(":memory:")) as db:
        return _query(db, where, params)


def _query(db: sqlite3.Connection, where: str, params: list[object]) -> list[str]:
    db.execute("CREATE TABLE t (name TEXT, statecode INT, msdyn_company TEXT, modifiedon TEXT, "
               "msdyn_isleaf INT, amount REAL)")
    db.executemany("INSERT INTO t VALUES (?, ?, ?, ?, ?, ?)", [
        ("O'Brien", 0, "c1", "2026-01-01T00:00:00Z", 1, 10.0),
        ("100%", 1, "c2", "2026-02-01T00:00:00Z", 0, 20.5),
        ("plain", 0, None, "2026-03-01T00:00:00Z", 1, 30.0)])
    return [r[0] for r in db.execute(f"SELECT name FROM t WHERE {where} ORDER BY name", params)]


@pytest.mark.parametrize(("text", "expected"), [
    ("name eq 'O''Brien'", ["O'Brien"]),
    ("statecode ne 0", ["100%"]),
    ("contains(name,'%')", ["100%"]),
    ("startswith(name,'pl') or endswith(name,'ien')", ["O'Brien", "plain"]),
    ("_msdyn_company_value eq null", ["plain"]),
    ("_msdyn_company_value ne null and msdyn_isleaf eq true", ["O'Brien"]),
    ("modifiedon gt 2026-01-15T00:00:00Z", ["100%", "plain"]),
    ("amount ge 20.5 and not (statecode eq 1)", ["plain"]),
    ("name in ('plain', 'x')", ["plain"]),
    ("tolower(name) eq 'o''brien'", ["O'Brien"]),
    ("amount add 1 gt 30", ["plain"]),
])
def test_filters_select_the_expected_rows(text: str, expected: list[str]) -> None:
    where, params = parse_filter(text, COLUMNS)
    assert "'" not in where.replace("ESCAPE '\\'", "")  # every literal is a bound parameter
    assert _rows(where, params) == expected


@pytest.mark.parametrize("text", ["colour eq 1", "name eq", "substringof('a',name)", "(((",
                                  "owner/name eq 'x'", "", "name eq 'unterminated"])
def test_bad_filters_raise_400(text: str) -> None:
    with pytest.raises(ODataError) as caught:
        parse_filter(text, COLUMNS) if text else parse_filter(" ", COLUMNS)
    assert caught.value.status == 400


def test_select_orderby_top_skip_count() -> None:
    query = parse_query({"$select": "name, statecode", "$orderby": "statecode desc,name",
                         "$top": "5", "$skip": "10", "$count": "true"}, COLUMNS)
    assert query.select == ["name", "statecode"]
    assert query.order_by == '"statecode" DESC, "name" ASC'
    assert (query.top, query.skip, query.count) == (5, 10, True)


def test_lookup_property_maps_to_its_column() -> None:
    assert parse_query({"$orderby": "_msdyn_company_value"}, COLUMNS).order_by == '"msdyn_company" ASC'


@pytest.mark.parametrize("options", [{"$select": "nope"}, {"$orderby": "name sideways"},
                                     {"$orderby": "nope"}, {"$top": "x"}, {"$skip": "-1"},
                                     {"$count": "maybe"}])
def test_bad_options_raise_400(options: dict[str, str]) -> None:
    with pytest.raises(ODataError) as caught:
        parse_query(options, COLUMNS)
    assert caught.value.status == 400


def test_datetimes_are_normalised_to_stored_form() -> None:
    assert normalise_datetime("2026-01-01T01:00:00+01:00") == "2026-01-01T00:00:00Z"
    assert normalise_datetime("2026-01-01T00:00:00.123Z") == "2026-01-01T00:00:00Z"
