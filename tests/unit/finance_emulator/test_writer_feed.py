"""Writes and the change feed over an in-memory SQLite database (no files, no HTTP)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from emulators.common.errors import ODataError
from emulators.common.store import Store
from emulators.finance import tables
from emulators.finance.entities import entity_named
from emulators.finance.feed import read_feed
from emulators.finance.writer import IMAGES_DDL, Writer

pytestmark = pytest.mark.unit

LE = entity_named("LegalEntities")
CUSTOMERS = entity_named("CustomersV3")


@pytest.fixture
def store() -> Iterator[Store]:
    db = Store(Path(":memory:"))
    db.conn.executescript(IMAGES_DDL)
    tables.create_tables(db.conn)
    yield db
    db.close()


def _customer(account: str) -> dict[str, object]:
    return {"dataAreaId": "usmf", "CustomerAccount": account, "Name": account}


def test_each_write_appends_one_entry_with_its_row_image(store: Store) -> None:
    writer = Writer(store, clock_ms=lambda: 1_000)
    with store.transaction("alice"):
        writer.insert(LE, {"dataAreaId": "usmf", "AccountingCurrency": "USD"})
        writer.insert(CUSTOMERS, _customer("C1"))
    with store.transaction("bob"):
        writer.update(CUSTOMERS, {"dataAreaId": "usmf", "CustomerAccount": "C1"}, {"Name": "N"})
        writer.delete(CUSTOMERS, {"dataAreaId": "usmf", "CustomerAccount": "C1"})
    page = read_feed(store.conn, 0)
    assert [(e.entity, e.op, e.principal) for e in page.entries] == [
        ("LegalEntities", "c", "alice"), ("CustomersV3", "c", "alice"),
        ("CustomersV3", "u", "bob"), ("CustomersV3", "d", "bob")]
    assert page.entries[2].row is not None and page.entries[2].row["Name"] == "N"
    assert page.entries[3].row is None and page.entries[3].ts_ms == 1_000
    assert page.watermark == page.entries[-1].version and not page.more


def test_rolled_back_writes_leave_no_rows_and_no_feed_entries(store: Store) -> None:
    writer = Writer(store)
    with store.transaction("alice"):
        writer.insert(LE, {"dataAreaId": "usmf", "AccountingCurrency": "USD"})
    mark = read_feed(store.conn, 0).watermark
    with pytest.raises(ODataError), store.transaction("alice"):
        writer.insert(CUSTOMERS, _customer("C1"))
        writer.insert(CUSTOMERS, {**_customer("C2"), "dataAreaId": "zzzz"})
    assert read_feed(store.conn, mark).entries == []
    assert tables.fetch(store.conn, CUSTOMERS, {"dataAreaId": "usmf",
                                                "CustomerAccount": "C1"}) is None


def test_a_page_completes_the_transaction_it_stops_in(store: Store) -> None:
    writer = Writer(store)
    with store.transaction("seed"):
        writer.insert(LE, {"dataAreaId": "usmf", "AccountingCurrency": "USD"})
        for n in range(3):
            writer.insert(CUSTOMERS, _customer(f"C{n}"))
    with store.transaction("later"):
        writer.insert(CUSTOMERS, _customer("C9"))
    page = read_feed(store.conn, 0, top=2)
    assert len(page.entries) == 4 and page.more
    rest = read_feed(store.conn, page.watermark, top=2)
    assert [e.key["CustomerAccount"] for e in rest.entries] == ["C9"] and not rest.more


def test_an_entry_read_alone_still_shows_its_transactions_shape(store: Store) -> None:
    """A reader asking for one entity learns how many entries the transaction has per entity,
    and the entry's position in it."""
    writer = Writer(store)
    with store.transaction("seed"):
        writer.insert(LE, {"dataAreaId": "usmf", "AccountingCurrency": "USD"})
        writer.insert(CUSTOMERS, _customer("C1"))
        writer.insert(CUSTOMERS, _customer("C2"))
    (first, second) = read_feed(store.conn, 0, ["CustomersV3"]).entries
    assert (first.txorder, second.txorder) == (2, 3)
    assert first.txentries == second.txentries == {"LegalEntities": 1, "CustomersV3": 2}
    assert first.as_json()["txentries"] == {"LegalEntities": 1, "CustomersV3": 2}


def test_rec_version_is_the_feed_version_and_rec_ids_start_like_fo(store: Store) -> None:
    writer = Writer(store)
    with store.transaction("alice"):
        row = writer.insert(LE, {"dataAreaId": "usmf", "AccountingCurrency": "USD"})
    assert row["RecId"] == 5637144576
    assert row["RecVersion"] == read_feed(store.conn, 0).entries[0].version
    assert tables.etag(row) == f'W/"{row["RecVersion"]}"'


def test_create_tables_adds_fields_declared_since_the_database_was_made() -> None:
    db = Store(Path(":memory:"))
    db.conn.execute('CREATE TABLE "fo_Units" (RecId INTEGER PRIMARY KEY AUTOINCREMENT, '
                    '"UnitSymbol" TEXT, RecVersion INTEGER NOT NULL, '
                    'ModifiedDateTime TEXT NOT NULL, UNIQUE ("UnitSymbol"))')
    tables.create_tables(db.conn)
    columns = {r[1] for r in db.conn.execute('PRAGMA table_info("fo_Units")').fetchall()}
    assert {"Description", "UnitClass"} <= columns
    db.close()
