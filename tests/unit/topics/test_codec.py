"""Envelope, command and ack codecs: round trips and every class of bad input."""

from __future__ import annotations

import json

import orjson
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from topics import (
    MAX_VERSION,
    Applied,
    ChangeEvent,
    Command,
    CommandSource,
    DecodeError,
    DecodeReason,
    decode_ack,
    decode_command,
    decode_event,
    decode_key,
    dlq_headers,
    encode,
    encode_key,
    may_hold_wide_integer,
    parse_version,
    target_key,
)
from topics.codec import _load

pytestmark = pytest.mark.unit

json_scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**53), 2**53),
                         st.text(max_size=20), st.floats(allow_nan=False, allow_infinity=False))
rows = st.dictionaries(st.text(min_size=1, max_size=12), json_scalars, max_size=6)


@st.composite
def events(draw: st.DrawFn) -> ChangeEvent:
    op = draw(st.sampled_from(["c", "u", "d", "r"]))
    before = draw(st.one_of(st.none(), rows)) if op != "d" else draw(rows)
    after = None if op == "d" else draw(rows)
    source = {
        "system": draw(st.sampled_from(["dataverse", "finance"])),
        "table": draw(st.sampled_from(["msdyn_projects", "ProjectsV2", "accounts"])),
        "version": str(draw(st.integers(0, 2**62))),
        "ts_ms": draw(st.integers(0, 2**45)),
        "snapshot": "true" if op == "r" else "false",
        "company": draw(st.one_of(st.none(), st.sampled_from(["usmf", "demf"]))),
        "txid": draw(st.one_of(st.none(), st.uuids().map(str))),
        "origin": draw(st.one_of(st.none(), st.text(min_size=1, max_size=10))),
    }
    tx = draw(st.one_of(st.none(), st.builds(
        lambda i, n: {"id": i, "total_order": n, "data_collection_order": n, "event_count": n},
        st.uuids().map(str), st.integers(1, 1000))))
    return ChangeEvent.model_validate({"before": before, "after": after, "op": op,
                                       "ts_ms": draw(st.integers(0, 2**45)), "source": source,
                                       "transaction": tx})


@given(events())
def test_event_round_trip(event: ChangeEvent) -> None:
    assert decode_event(encode(event)) == event


@given(st.text(min_size=1, max_size=60))
def test_key_round_trip(record_id: str) -> None:
    assert decode_key(encode_key(record_id)).id == record_id


@given(st.dictionaries(st.sampled_from(["dataAreaId", "ProjectId", "Task"]),
                       st.one_of(st.text(max_size=8), st.integers(-(2**53), 2**53)), min_size=1))
def test_command_and_ack_round_trip(key: dict[str, str | int]) -> None:
    cmd = Command(command_id="projects:abc:7", map="projects", target="finance", entity="ProjectsV2",
                  key=key, op="upsert", fields={"ProjectName": "Ünïcode 'quoted'"}, fingerprint="f" * 16,
                  source={"system": "dataverse", "table": "msdyn_projects", "id": "abc", "version": 7,
                          "ts_ms": 1})
    assert decode_command(encode(cmd)) == cmd
    ack = Applied(command_id=cmd.command_id, map=cmd.map, target="finance", entity=cmd.entity,
                  key=key, op="upsert", source_version=7, source_system="dataverse",
                  source_table="msdyn_projects", source_id="abc", fingerprint=cmd.fingerprint,
                  applied_ts_ms=5)
    assert decode_ack(encode(ack)) == ack
    assert ack.record_key == cmd.record_key


def test_target_key_is_canonical_and_quotes_strings() -> None:
    a = target_key("ProjectsV2", {"ProjectId": "O'Neil", "dataAreaId": "usmf"})
    b = target_key("ProjectsV2", {"dataAreaId": "usmf", "ProjectId": "O'Neil"})
    assert a == b == "ProjectsV2(ProjectId='O''Neil',dataAreaId='usmf')"


def test_tombstone_decodes_to_none() -> None:
    assert decode_event(None) is None


VALID = {"before": None, "after": {"id": "1"}, "op": "c", "ts_ms": 1,
         "source": {"system": "dataverse", "table": "accounts", "version": "3", "ts_ms": 1}}


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"", DecodeReason.EMPTY),
        (b"{not json", DecodeReason.NOT_JSON),
        (b"\xff\xfe", DecodeReason.NOT_JSON),
        (b"[1, 2]", DecodeReason.WRONG_SHAPE),
        (orjson.dumps({**VALID, "op": "x"}), DecodeReason.UNKNOWN_OP),
        (orjson.dumps({**VALID, "after": None}), DecodeReason.WRONG_SHAPE),
        (orjson.dumps({**VALID, "op": "d"}), DecodeReason.WRONG_SHAPE),
        (orjson.dumps({k: v for k, v in VALID.items() if k != "source"}), DecodeReason.WRONG_SHAPE),
        (orjson.dumps({**VALID, "source": {**VALID["source"], "version": "v3"}}), DecodeReason.BAD_VERSION),
        (orjson.dumps({**VALID, "surprise": 1}), DecodeReason.WRONG_SHAPE),
    ],
)
def test_bad_event_bytes_raise_typed_error(payload: bytes, reason: DecodeReason) -> None:
    with pytest.raises(DecodeError) as info:
        decode_event(payload)
    assert info.value.reason is reason
    assert info.value.detail


@pytest.mark.parametrize(("version", "why"), [
    ("9223372036854775808", "above 2^63-1"),  # 2^63: no longer an Edm.Int64 (a Java long)
    ("9999999999999999999", "above 2^63-1"),
    ("12345678901234567890", "20 digits"),
    ("\u0663", "not ASCII decimal digits"),  # ARABIC-INDIC DIGIT THREE: int() reads it
    ("\u00b2", "not ASCII decimal digits"),  # SUPERSCRIPT TWO: isdigit() says yes, int() no
    ("", "not ASCII decimal digits"),
    (" 7", "not ASCII decimal digits"),
    ("-1", "not ASCII decimal digits"),
    (7, "expected decimal digits, got int"),
])
def test_a_version_outside_ascii_digits_or_64_bits_is_bad_version(version: object, why: str) -> None:
    payload = orjson.dumps({**VALID, "source": {**VALID["source"], "version": version}})
    with pytest.raises(DecodeError) as info:
        decode_event(payload)
    assert info.value.reason is DecodeReason.BAD_VERSION
    assert why in info.value.detail


@pytest.mark.parametrize("version", ["0", "9223372036854775807", str(MAX_VERSION)])
def test_a_version_up_to_2_63_minus_1_decodes_and_is_carried_by_commands(version: str) -> None:
    event = decode_event(orjson.dumps({**VALID, "source": {**VALID["source"], "version": version}}))
    assert event is not None and event.source.version_int == int(version) == parse_version(version)
    source = CommandSource(system="dataverse", table="t", id="1", version=int(version), ts_ms=0)
    assert orjson.loads(orjson.dumps(source.model_dump()))["version"] == int(version)


def test_command_models_refuse_a_version_above_2_63_minus_1() -> None:
    with pytest.raises(ValueError, match="less than or equal"):
        CommandSource(system="dataverse", table="t", id="1", version=MAX_VERSION + 1, ts_ms=0)


@pytest.mark.parametrize("payload", [None, b"", b"{}", b'{"id": ""}', b'"abc"', b'{"id": 5}'])
def test_missing_or_bad_key_is_missing_key(payload: bytes | None) -> None:
    with pytest.raises(DecodeError) as info:
        decode_key(payload)
    assert info.value.reason in (DecodeReason.MISSING_KEY, DecodeReason.NOT_JSON)


def test_bad_command_is_wrong_shape() -> None:
    with pytest.raises(DecodeError) as info:
        decode_command(b'{"command_id": "x"}')
    assert info.value.reason is DecodeReason.WRONG_SHAPE
    assert "map" in info.value.detail or "Field required" in info.value.detail


def test_a_command_names_redriven_only_when_it_is() -> None:
    """A live command's JSON is what a sink of the release before `redriven` reads (its models
    forbid unknown fields); a re-driven one says so and decodes as such."""
    from tests.unit.connectors.fakes import command

    live = command("A", 1)
    assert b"redriven" not in encode(live)
    again = live.model_copy(update={"source": live.source.model_copy(update={"redriven": True})})
    assert decode_command(encode(again)).source.redriven
    assert not decode_command(encode(live)).source.redriven


@given(st.text(st.characters(exclude_categories=())))  # surrogates included
@example("a lone \ud800 surrogate")
def test_dead_letter_headers_write_any_message(message: str) -> None:
    (header,) = [v for k, v in dlq_headers(stage="sink", error_class="E", message=message)
                 if k == "dlq.error.message"]
    try:
        assert header == message[:4000].encode()  # text UTF-8 can hold: as it is
    except UnicodeEncodeError:
        assert header == message[:4000].encode("utf-8", "backslashreplace")  # a lone surrogate: escaped


def test_an_integer_beyond_64_bits_is_decoded_exactly_never_as_a_float() -> None:
    for wide in (2**70, 2**64, -(2**63) - 1):
        event = decode_event(orjson.dumps({"before": None, "op": "c", "ts_ms": 1,
                                           "source": {"system": "dataverse", "table": "accounts", "version": "7",
                                                      "ts_ms": 1}}).replace(b'"before":null',
                                                                            b'"before":null,"after":{"amount":%d}' % wide))
        assert event is not None and event.after == {"amount": wide} and type(event.after["amount"]) is int


def test_a_wide_message_nested_deeper_than_the_standard_library_reads_is_a_decode_error() -> None:
    deep = b'{"id":' + b"[" * 1010 + b"1234567890123456789" + b"]" * 1010 + b"}"
    with pytest.raises(DecodeError):
        decode_key(deep)


json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False),
              st.text()),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=6), inner, max_size=4)),
    max_leaves=20)


@given(json_values)
@example(2**64)
@example(-(2**63) - 1)
@example(9_223_372_036_854_775_807)
def test_a_text_without_a_wide_integer_mark_reads_alike_in_both_readers(value: object) -> None:
    text = orjson.dumps(value) if not _wide(value) else json.dumps(value).encode()
    if not may_hold_wide_integer(text):
        assert repr(orjson.loads(text)) == repr(json.loads(text))
    else:
        assert repr(_load(text)) == repr(json.loads(text))


def _wide(value: object) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return not -(2**63) <= value < 2**64
    if isinstance(value, list):
        return any(_wide(v) for v in value)
    if isinstance(value, dict):
        return any(_wide(v) for v in value.values())
    return False
