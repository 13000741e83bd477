"""The snapshot's fast path through the envelope: trusted constructors equal to the validated
models, and `encode_event` byte for byte equal to `encode`, whatever the images hold."""

from __future__ import annotations

import datetime
import decimal
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.unit.topics.test_codec import events
from topics import (
    ChangeEvent,
    Source,
    TransactionBlock,
    decode_event,
    encode,
    encode_event,
    encode_key,
    encode_read,
)

pytestmark = pytest.mark.unit


def trusted_copy(event: ChangeEvent) -> ChangeEvent:
    s = event.source
    source = Source.trusted(s.system, s.table, s.version, s.ts_ms, s.snapshot, s.company, s.txid, s.origin)
    return ChangeEvent.trusted(event.op, event.ts_ms, source, event.before, event.after, event.transaction)


@given(events())
def test_a_trusted_event_is_the_validated_one(event: ChangeEvent) -> None:
    trusted = trusted_copy(event)
    assert trusted == event and trusted.source == event.source
    assert encode(trusted) == encode(event)
    assert decode_event(encode_event(trusted)) == event
    marked = trusted.model_copy(update={"source": trusted.source.model_copy(update={"snapshot": "last"})})
    assert marked.source.snapshot == "last" and trusted.source.snapshot == event.source.snapshot


@given(events())
def test_encode_event_is_encode_byte_for_byte(event: ChangeEvent) -> None:
    assert encode_event(event) == encode(event)


def test_encode_event_writes_every_field_of_the_envelope() -> None:
    source = Source(system="finance", table="T", version="1", ts_ms=1, snapshot="true", extra="kept")
    event = ChangeEvent(op="r", ts_ms=2, source=source, after={"a": 1},
                        transaction=TransactionBlock(id="t", total_order=1, data_collection_order=1))
    written = orjson.loads(encode_event(event))
    assert list(written) == list(ChangeEvent.model_fields)
    assert list(written["source"]) == [*Source.model_fields, "extra"]
    assert list(written["transaction"]) == list(TransactionBlock.model_fields)
    assert encode_event(event) == encode(event)


@pytest.mark.parametrize("value", [
    datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.UTC),  # orjson and pydantic differ
    datetime.date(2026, 1, 2), decimal.Decimal("1.50"), b"bytes", {1: "int key"}, (1, 2), {"a", "b"},
    float("nan"), float("inf"), 2**63 - 1, -(2**63), "é\u2028\x00", 1e300,
])
def test_values_json_does_not_hold_are_written_as_encode_writes_them(value: Any) -> None:
    event = ChangeEvent(op="u", ts_ms=1, source=Source(system="finance", table="T", version="1", ts_ms=1),
                        before={"v": value}, after={"v": value})
    assert encode_event(event) == encode(event)


def test_what_encode_cannot_write_encode_event_cannot_either() -> None:
    event = ChangeEvent(op="u", ts_ms=1, source=Source(system="finance", table="T", version="1", ts_ms=1),
                        after={"v": 2**64})
    with pytest.raises(TypeError):
        encode(event)
    with pytest.raises(TypeError):
        encode_event(event)


def read_parts(event: ChangeEvent) -> tuple[Any, ...]:
    s = event.source
    return (s.system, s.table, s.version, s.ts_ms, s.snapshot, s.company, event.ts_ms, event.after)


@given(events())
def test_encode_read_is_encode_of_the_snapshot_event_byte_for_byte(event: ChangeEvent) -> None:
    # A snapshot row's event: op "r", no before image, no transaction, no txid or origin.
    source = event.source.model_copy(update={"txid": None, "origin": None})
    row = ChangeEvent(op="r", ts_ms=event.ts_ms, source=Source.model_validate(source.model_dump()),
                      after=event.after or {"k": 1})
    assert encode_read(*read_parts(row)) == encode(row)


@pytest.mark.parametrize("value", [
    datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.UTC), decimal.Decimal("1.50"), {1: "int key"},
    float("nan"), 2**63 - 1, "é\u2028\x00", 1e300,
])
def test_encode_read_writes_odd_values_as_encode_writes_them(value: Any) -> None:
    row = ChangeEvent(op="r", ts_ms=1, source=Source(system="finance", table="T", version="1", ts_ms=1,
                                                     snapshot="true", company="usmf"), after={"v": value})
    assert encode_read(*read_parts(row)) == encode(row)


def test_what_encode_cannot_write_encode_read_cannot_either() -> None:
    with pytest.raises(TypeError):
        encode_read("finance", "T", "1", 1, "true", None, 1, {"v": 2**64})


@given(st.text())
def test_a_key_is_written_as_orjson_writes_the_object(record_id: str) -> None:
    try:
        expected = orjson.dumps({"id": record_id})
    except TypeError:  # a lone surrogate: refused the same way
        with pytest.raises(TypeError):
            encode_key(record_id)
        return
    assert encode_key(record_id) == expected


def test_a_key_that_orjson_cannot_write_is_refused() -> None:
    with pytest.raises(TypeError):
        encode_key("usmf|\ud800")


def test_trusted_commands_sources_and_keys_are_the_validated_ones() -> None:
    """The worker builds these per change without validating them (`Command.trusted`,
    `CommandSource.trusted`, `decode_key`'s plain key): equal to the validated models, field
    for field and on the wire."""
    from topics import ChangeKey, Command, CommandSource, decode_key

    for redriven in (False, True):
        parts = ("dataverse", "msdyn_projects", "p-1", 2**63 - 1, 5, "tx-1", "someone", redriven)
        source = CommandSource.trusted(*parts)
        validated_source = CommandSource(**dict(zip(("system", "table", "id", "version", "ts_ms", "txid", "origin",
                                                     "redriven"), parts, strict=True)))
        assert source == validated_source and encode(source) == encode(validated_source)
        for tx in ((None, None), (3, 2)):
            values = {"command_id": "projects:p-1:7", "map": "projects", "target": "finance",
                      "entity": "ProjectsV2", "key": {"ProjectID": "PRJ-1", "dataAreaId": "usmf", "n": 1.5},
                      "op": "upsert", "fields": {"a": [1, {"b": None}], "c": True}, "fingerprint": "sha256:x",
                      "source": source, "tx_size": tx[0], "tx_order": tx[1], "update_only": redriven}
            command, validated = Command.trusted(**values), Command(**values)
            assert command == validated and encode(command) == encode(validated)
            assert list(command.__dict__) == list(Command.model_fields)
    key = decode_key(encode_key("p-1"))
    assert key == ChangeKey(id="p-1") and key.model_fields_set == {"id"}


@pytest.mark.parametrize(("value", "error"), [(2**70, "Integer exceeds 64-bit range"),
                                              ("\ud800", "str is not valid UTF-8")])
def test_encode_refuses_what_orjson_refuses_with_its_error(value: Any, error: str) -> None:
    """pydantic's writer would write an integer beyond 64 bits, which readers of the topics take
    as a float; `encode` raises orjson's error instead (the gate dead-letters the change)."""
    from topics import Command, CommandSource

    command = Command.trusted("c", "m", "finance", "E", {"k": "v"}, "upsert", {"f": value}, "fp",
                              CommandSource.trusted("dataverse", "t", "a", 1, 1), None, None, False)
    with pytest.raises(TypeError, match=error):
        encode(command)
    assert encode(command.model_copy(update={"fields": {"f": 2**63}})) == orjson.dumps(
        command.model_copy(update={"fields": {"f": 2**63}}).model_dump(mode="json"))
