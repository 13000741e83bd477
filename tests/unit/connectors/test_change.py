"""`Change`: a snapshot row built from its checked parts (`Change.read`) is the same value as one
built from its validated event, encodes to the same bytes, and is changed the same way."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.common.images import ImageStore
from connectors.common.source import Change, row_image
from connectors.dataverse.source import row_change
from topics import ChangeEvent, Source, encode_event

pytestmark = pytest.mark.unit

IMAGE = {"dataAreaId": "usmf", "CustomerAccount": "US-001", "Name": "Contoso é", "RecId": 5637144576,
         "RecVersion": 20, "CreditLimit": 1.5, "Tags": ["a", {"b": None}]}


def both() -> tuple[Change, Change]:
    read = Change.read("usmf|US-001", "finance", "CustomersV3", "20", 1_700_000_000_000, "usmf", 1_800_000_000_000,
                       dict(IMAGE))
    source = Source(system="finance", table="CustomersV3", version="20", ts_ms=1_700_000_000_000, snapshot="true",
                    company="usmf")
    validated = Change("usmf|US-001", ChangeEvent(op="r", ts_ms=1_800_000_000_000, source=source, after=dict(IMAGE)))
    return read, validated


def test_a_read_change_is_the_change_of_its_validated_event() -> None:
    read, validated = both()
    assert read == validated and hash(read) == hash(validated)
    assert read.event == validated.event
    assert read.encode() == validated.encode() == encode_event(validated.event)
    assert (read.op, read.image, read.row, read.company) == ("r", IMAGE, IMAGE, "usmf")


@pytest.mark.parametrize("update", [{"snapshot": "last"}, {"company": "demf"}, {"snapshot": "last", "company": None}])
def test_a_read_change_with_other_source_fields_is_the_validated_one_changed_so(update: dict[str, str | None]) -> None:
    read, validated = both()
    changed, expected = read.with_source(**update), validated.with_source(**update)
    assert changed == expected and changed.encode() == expected.encode()
    assert read == validated  # the original is left as it was


def test_a_delete_is_forgotten_by_the_image_store_and_a_read_row_remembered() -> None:
    read, _ = both()
    source = Source(system="finance", table="CustomersV3", version="21", ts_ms=1)
    gone = Change("usmf|US-002", ChangeEvent(op="d", ts_ms=1, source=source, before={"RecId": 2}, after=None))
    store = ImageStore()
    store.remember("CustomersV3", [read, gone])
    assert store.get("CustomersV3", "usmf|US-001") == IMAGE
    assert store.get("CustomersV3", "usmf|US-002") is None
    assert gone.image is None and gone.row == {"RecId": 2} and gone.op == "d"


def test_a_dataverse_snapshot_row_is_read_from_its_parts_and_equals_the_validated_change() -> None:
    row = {"@odata.etag": 'W/"7"', "accountid": "a-1", "name": "Fabrikam", "versionnumber": 7,
           "modifiedon": "2026-01-02T03:04:05Z", "cdm_companycode": "usmf", "revenue": 2.5}
    change = row_change("accounts", "accountid", row, snapshot=True, captured_ms=9, company_field="cdm_companycode")
    assert isinstance(change, Change) and change._read is not None  # the fast path was taken
    image = {k: v for k, v in row.items() if "@" not in k}
    expected = ChangeEvent(op="r", ts_ms=9, after=image, source=Source(
        system="dataverse", table="accounts", version="7", ts_ms=1_767_323_045_000, snapshot="true", company="usmf"))
    assert change.event == expected and change.encode() == encode_event(expected)


def test_a_dataverse_snapshot_row_with_transaction_annotations_keeps_them() -> None:
    row = {"accountid": "a-1", "versionnumber": 7, "@dualwrite.txid": "tx-9", "@dualwrite.principal": "app"}
    change = row_change("accounts", "accountid", row, snapshot=True, captured_ms=9)
    assert isinstance(change, Change)
    assert (change.event.source.txid, change.event.source.origin) == ("tx-9", "app")


@given(st.dictionaries(st.text(max_size=8), st.integers(), max_size=8))
def test_a_row_image_is_the_row_without_annotations_in_its_order(row: dict[str, int]) -> None:
    expected = [(k, v) for k, v in row.items() if "@" not in k]
    assert list(row_image(row).items()) == expected
    assert list(row_image(dict(row)).items()) == expected  # the shape remembered: the same answer


def test_a_row_image_is_a_copy_and_rows_of_many_shapes_are_still_read() -> None:
    row = {"@odata.etag": "W/1", "Name": "a", "x@OData.Community.Display.V1.FormattedValue": "b", "Id": 1}
    image = row_image(row)
    assert image == {"Name": "a", "Id": 1} and list(image) == ["Name", "Id"]
    image["Name"] = "changed"
    assert row["Name"] == "a" and "@odata.etag" in row
    # More shapes than are remembered (hostile rows with ever new names): each still right.
    for n in range(3000):
        assert row_image({f"f{n}": n, f"a@{n}": 0}) == {f"f{n}": n}
