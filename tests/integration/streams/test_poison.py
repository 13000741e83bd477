"""Poisoned change events mixed with good ones through a real broker and worker: each bad one
is a dead letter exactly once, with its stage and reason; the good ones become commands; the
worker never restarts."""

from __future__ import annotations

from collections import Counter
from typing import Any

import orjson
import pytest

from tests.integration.streams import scenario as s
from tests.integration.streams.harness import Reader
from topics import MAX_VERSION, cdc_topic, encode_key, read_headers

pytestmark = pytest.mark.integration

PROJECTS = "msdyn_projects"
HUGE_ID = "p-" + "k" * 900 * 1024  # the record fits Kafka; its gate message (id twice) does not


def project(number: str, record_id: str, **extra: Any) -> dict[str, Any]:
    return {**s.project_row(), "msdyn_projectid": record_id, "msdyn_projectnumber": number, **extra}


def raw_event(row: dict[str, Any], version: str) -> bytes:
    """A change event built by hand: the envelope models refuse to build the bad ones."""
    return orjson.dumps({"before": None, "after": row, "op": "c", "ts_ms": 1,
                         "source": {"system": "dataverse", "table": PROJECTS, "version": version,
                                    "ts_ms": 1}})


def dlq_id(key: bytes) -> str:
    """The record id of a dead letter (CDC keys are ``{"id": ...}``, the gate's the bare id)."""
    return str(orjson.loads(key)["id"]) if key.startswith(b"{") else key.decode()


def test_poisoned_events_are_dead_letters_once_and_the_good_ones_go_on(
        worker, cdc, finance_commands, kafka_bootstrap, prefix, unique):
    s.seed_lookups(cdc)
    # Poison, by the stage that must catch it.
    cdc.change("dataverse", PROJECTS, "p-list-state", project("PRJ-0002", "p-list-state",
                                                              statecode=[0]), 7, op="c")
    cdc.change("dataverse", PROJECTS, "p-dict-number", project({"a": 1}, "p-dict-number"), 7,  # type: ignore[arg-type]
               op="c")
    cdc.raw(cdc_topic("dataverse", PROJECTS), encode_key("p-huge-version"),
            raw_event(project("PRJ-0004", "p-huge-version"), str(MAX_VERSION + 1)))
    cdc.change("dataverse", "msdyn_projecttasks", "t-list-project",
               {**s.task_row("t-list-project"), "_msdyn_project_value": [s.PROJECT_ID]}, 3, op="c")
    cdc.change("finance", "ProjectsV2", "5637000009",
               {"dataAreaId": "usmf", "ProjectId": {"x": 1}, "RecId": 5637000009}, 101, op="c")
    # Too big or too deep for a gate message: before, the ingest agent raised on them for ever.
    cdc.raw(cdc_topic("dataverse", PROJECTS), encode_key(HUGE_ID),
            raw_event(project("PRJ-0006", "p-huge-id"), "7"))
    cdc.raw(cdc_topic("dataverse", PROJECTS), encode_key("p-deep"), raw_event(
        project("PRJ-0007", "p-deep", msdyn_description="@DEEP@"), "7").replace(
        b'"@DEEP@"', b'{"x":' * 300 + b'"deep"' + b"}" * 300))
    # An integer beyond 64 bits (a hostile producer; our sources never write one): read as the
    # float orjson makes of it, it flowed on with another value.
    cdc.raw(cdc_topic("dataverse", PROJECTS), encode_key("p-wide-number"), raw_event(
        project("PRJ-0008", "p-wide-number", msdyn_subject="@WIDE@"), "7").replace(
        b'"@WIDE@"', str(2**70).encode()))
    # Good ones, around and between them.
    cdc.change("dataverse", PROJECTS, s.PROJECT_ID, s.project_row(), 7, op="c")
    cdc.raw(cdc_topic("dataverse", PROJECTS), encode_key("p-max-version"),
            raw_event(project("PRJ-0005", "p-max-version"), str(MAX_VERSION)))
    cdc.change("dataverse", "msdyn_projecttasks", s.TASK_ID, s.task_row(), 3, op="c")

    dlq = Reader(kafka_bootstrap, prefix + "sync.dlq", f"dlq-{unique}")
    try:
        finance_commands.poll_until(lambda r: len(r) >= 2, timeout=120, worker=worker)
        [first] = [c for c in finance_commands.commands() if c.source.id == s.PROJECT_ID]
        s.ack(cdc, first)
        finance_commands.poll_until(lambda r: len(r) >= 3, timeout=60, worker=worker)
        dlq.poll_until(lambda r: len(r) >= 8, timeout=60, worker=worker)
        dlq.drain(8)  # and no second copy of any of them
        finance_commands.drain(1)
    finally:
        dlq.close()

    letters = {}
    for record in dlq.records:
        h = read_headers(record.headers())
        letters.setdefault(dlq_id(record.key()), []).append(
            (h["dlq.stage"], h.get("dlq.map"), h["dlq.error.class"], h["dlq.error.message"]))
    assert Counter({k: len(v) for k, v in letters.items()}) == Counter(
        {"p-list-state": 1, "p-dict-number": 1, "p-huge-version": 1, "t-list-project": 1,
         "5637000009": 1, HUGE_ID: 1, "p-deep": 1, "p-wide-number": 1}), {k[:40]: v for k, v in letters.items()}
    [(stage, map_name, error, message)] = letters["p-wide-number"]
    assert (stage, map_name, error, message) == ("emit", "projects", "TypeError", "Integer exceeds 64-bit range")
    [(stage, _, error, _)] = letters[HUGE_ID]
    assert (stage, error) == ("route", "GateRecordTooLarge")
    [(stage, _, error, _)] = letters["p-deep"]
    assert (stage, error) == ("route", "PydanticSerializationError")
    [(stage, map_name, error, message)] = letters["p-list-state"]
    assert (stage, map_name, error) == ("transform", "projects", "TransformError")
    assert "field 'ProjectStage' must be a scalar, got list" in message
    [(stage, map_name, error, message)] = letters["p-dict-number"]
    assert (stage, map_name, error) == ("transform", "projects", "TransformError")
    assert "field 'ProjectId' must be a scalar, got dict" in message
    [(stage, map_name, error, message)] = letters["p-huge-version"]
    assert (stage, map_name, error) == ("decode", None, "DecodeError.bad_version")
    assert "above 2^63-1" in message
    [(stage, map_name, error, message)] = letters["t-list-project"]
    assert (stage, map_name, error) == ("transform", "project_tasks", "TransformError")
    assert "lookup column '_msdyn_project_value'" in message
    [(stage, map_name, error, message)] = letters["5637000009"]
    assert (stage, map_name, error) == ("route", "projects", "TransformError")
    assert "target key field 'ProjectId' must be a scalar" in message

    commands = finance_commands.commands()
    assert sorted((c.entity, c.source.id, c.source.version) for c in commands) == [
        ("ProjectTasks", s.TASK_ID, 3), ("ProjectsV2", "p-max-version", MAX_VERSION),
        ("ProjectsV2", s.PROJECT_ID, 7)], worker.tail()
    assert worker.restarts == 0 and worker.proc is not None and worker.proc.poll() is None, \
        worker.tail()
