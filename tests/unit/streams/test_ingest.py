"""`streams.ingest.Ingest` on its own: a dict for the versions table, no Faust, no broker."""

from __future__ import annotations

from typing import Any

import pytest

from streams.factview import FactView, deleted_key
from streams.ingest import Ingest, Refused, Taken
from streams.maps import default_registry
from streams.wire import PendingMsg, decode_gate
from tests.unit.streams import rows
from topics import ChangeEvent, cdc_topic, encode, encode_key
from topics.envelope import Source

pytestmark = pytest.mark.unit

PROJECTS = cdc_topic("dataverse", "msdyn_projects")
COMPANIES = cdc_topic("dataverse", "cdm_companies")
COMPANY_ROW = {"cdm_companyid": rows.COMPANY, "cdm_companycode": "usmf", "cdm_name": "Contoso"}


def event(table: str, row: dict[str, Any], version: int, op: str = "c") -> bytes:
    image = {"before": row, "after": None} if op == "d" else {"after": row}
    return encode(ChangeEvent(op=op, ts_ms=1, source=Source(system="dataverse", table=table,
                                                          version=str(version), ts_ms=1), **image))


def make(versions: dict[str, Any] | None = None, view: FactView | None = None) -> Ingest:
    maps = default_registry()
    tables = {cdc_topic(s, t): (s, t) for s, t in maps.cdc_tables()}
    return Ingest(maps, tables, {} if versions is None else versions, view or FactView(), 1_000_000)


def keys(taken: Any) -> list[str]:
    assert isinstance(taken, Taken)
    return [k.decode() for k, _v in taken.records]


def test_a_change_whose_facts_are_known_leaves_keyed_by_its_emit_step() -> None:
    ingest = make()
    company = ingest.take(COMPANIES, encode_key(rows.COMPANY), event("cdm_companies", COMPANY_ROW, 1), 0,
                          retried=False, now_ms=0)
    assert keys(company)[0] == rows.COMPANY_FACT  # the row's indexed columns, and learned here:
    assert ingest.view.get(rows.COMPANY_FACT) == {"cdm_companycode": "usmf"}
    taken = ingest.take(PROJECTS, encode_key(rows.PROJECT), event("msdyn_projects", rows.project(), 7), 0,
                        retried=False, now_ms=0)
    first_key, first_value = taken.records[0]  # type: ignore[union-attr]
    msg = decode_gate(first_value)
    assert isinstance(msg, PendingMsg) and rows.COMPANY_FACT in msg.item.facts
    # The company is known, so the change waits for the next fact it lacks: the customer's row.
    assert first_key.decode() == rows.ACCOUNT_FACT


def test_versions_dedupe_and_the_same_offset_is_taken_again() -> None:
    versions: dict[str, Any] = {}
    ingest = make(versions)
    value = event("msdyn_projects", rows.project(), 7)
    assert isinstance(ingest.take(PROJECTS, encode_key(rows.PROJECT), value, 5, retried=False, now_ms=0), Taken)
    assert versions == {f"dataverse:msdyn_projects:{rows.PROJECT}": {"version": 7, "offset": 5}}
    # The same version from another record of the topic: a duplicate, nothing to send.
    assert ingest.take(PROJECTS, encode_key(rows.PROJECT), value, 6, retried=False, now_ms=0) is None
    # The record that set the version, read again after a crash: taken again.
    assert isinstance(ingest.take(PROJECTS, encode_key(rows.PROJECT), value, 5, retried=False, now_ms=0), Taken)
    # Re-driven from the DLQ at a new offset: taken again.
    assert isinstance(ingest.take(PROJECTS, encode_key(rows.PROJECT), value, 9, retried=True, now_ms=0), Taken)


def test_a_delete_is_learned_before_anything_is_sent() -> None:
    ingest = make()
    taken = ingest.take(PROJECTS, encode_key(rows.PROJECT), event("msdyn_projects", rows.project(), 8, "d"), 0,
                        retried=False, now_ms=0)
    assert isinstance(taken, Taken)
    assert ingest.view.get(deleted_key("dataverse", "msdyn_projects", rows.PROJECT)) == {"version": 8}


@pytest.mark.parametrize(("key", "value", "error"), [
    (b'{"id": "x"}', b"{not json", "DecodeError.not_json"),
    (None, event("msdyn_projects", rows.project(), 7), "DecodeError.missing_key"),
])
def test_an_undecodable_record_is_refused_at_decode(key: bytes | None, value: bytes, error: str) -> None:
    versions: dict[str, Any] = {}
    refused = make(versions).take(PROJECTS, key, value, 0, retried=False, now_ms=0)
    assert isinstance(refused, Refused) and (refused.stage, refused.error) == ("decode", error)
    assert versions == {}


def test_a_tombstone_is_nothing_to_do() -> None:
    versions: dict[str, Any] = {}
    assert make(versions).take(PROJECTS, encode_key(rows.PROJECT), None, 0, retried=False, now_ms=0) is None
    assert versions == {}


def test_a_gate_record_over_the_limit_is_refused_at_route() -> None:
    maps = default_registry()
    tables = {cdc_topic(s, t): (s, t) for s, t in maps.cdc_tables()}
    ingest = Ingest(maps, tables, {}, FactView(), gate_max_bytes=200)
    refused = ingest.take(PROJECTS, encode_key(rows.PROJECT), event("msdyn_projects", rows.project(), 7), 0,
                          retried=False, now_ms=0)
    assert isinstance(refused, Refused) and refused.stage == "route"
