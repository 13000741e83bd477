"""The pure parts of `dualwrite replay`: ranges, the already-applied rule, the repair decision."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from connectors.common.kafka import KafkaRecord
from dualwrite.reconcile import Difference, MapReport, Row, Unresolved
from dualwrite.replay import (
    BadRange,
    Bound,
    Change,
    HistoryTables,
    Verdict,
    applied_index,
    classify,
    dead_lettered,
    decode_change,
    latest_per_record,
    parse_bound,
    redrive_records,
    repair_plan,
    resolve_ranges,
)
from streams.maps import default_registry
from tests.unit.connectors.fakes import applied, command
from tests.unit.streams import rows
from topics import RETRY_HEADER, ChangeEvent, Source, System, encode, is_retry

pytestmark = pytest.mark.unit

MAPS = default_registry()
TASKS = MAPS["project_tasks"]
TOPIC = "dataverse.cdc.msdyn_projecttasks"


def record(row: dict[str, Any] | None, version: int, offset: int, op: str = "u",
           record_id: str = "t-guid-1", partition: int = 0) -> KafkaRecord:
    value = None if row is None else encode(ChangeEvent(
        before=row if op == "d" else None, after=None if op == "d" else row, op=op, ts_ms=1,
        source=Source(system="dataverse", table="msdyn_projecttasks", version=str(version), ts_ms=1)))
    return KafkaRecord(topic=TOPIC, partition=partition, offset=offset,
                       key=f'{{"id": "{record_id}"}}'.encode(), value=value, headers=[], timestamp_ms=1)


def change(version: int, offset: int, op: str = "u", record_id: str = "t-guid-1", **row: Any) -> Change:
    image = rows.task(msdyn_projecttaskid=record_id, **row)
    return decode_change(record(image, version, offset, op, record_id), "dataverse", "msdyn_projecttasks")


def task_ack(record_id: str, version: int, map_name: str = "project_tasks") -> Any:
    cmd = command("T", version).model_copy(update={"map": map_name}).model_copy(update={
        "source": command("T", version).source.model_copy(update={
            "table": "msdyn_projecttasks", "id": record_id})})
    return applied(cmd)


# -- ranges -------------------------------------------------------------------------------------

def test_a_bound_is_an_offset_a_partitions_offset_or_an_iso_time() -> None:
    assert parse_bound("42") == Bound(offset=42)
    assert parse_bound("1:42") == Bound(offset=42, partition=1)
    assert parse_bound("2026-12-01T10:00:00Z") == Bound(time_ms=1796119200000)
    assert parse_bound("2026-12-01T10:00:00") == parse_bound("2026-12-01T11:00:00+01:00")
    for bad in ("x", "1:", "-3", "1:2:3", "yesterday"):
        with pytest.raises(BadRange):
            parse_bound(bad)


def never(topic: str, partition: int, time_ms: int) -> int:
    raise AssertionError("no time was given")


def test_ranges_default_to_the_whole_log_and_a_partitions_own_offset_wins() -> None:
    bounds = {(TOPIC, 0): (5, 20), (TOPIC, 1): (0, 10), (TOPIC, 2): (0, 0)}
    assert resolve_ranges(bounds, [], [], never) == {(TOPIC, 0): (5, 20), (TOPIC, 1): (0, 10)}
    ranged = resolve_ranges(bounds, [Bound(offset=8), Bound(offset=2, partition=1)], [Bound(offset=9)], never)
    assert ranged == {(TOPIC, 0): (8, 9), (TOPIC, 1): (2, 9)}
    # Clamped to the log; an empty range is left out.
    assert resolve_ranges(bounds, [Bound(offset=1)], [Bound(offset=99, partition=0)], never) == {
        (TOPIC, 0): (5, 20), (TOPIC, 1): (1, 10)}
    assert resolve_ranges(bounds, [Bound(offset=15)], [], never) == {(TOPIC, 0): (15, 20)}


def test_a_time_is_looked_up_per_partition() -> None:
    asked: list[tuple[str, int, int]] = []

    def at(topic: str, partition: int, time_ms: int) -> int:
        asked.append((topic, partition, time_ms))
        return 3 + partition

    bounds = {(TOPIC, 0): (0, 20), ("other", 0): (0, 7)}
    assert resolve_ranges(bounds, [Bound(time_ms=1000)], [], at) == {("other", 0): (3, 7), (TOPIC, 0): (3, 20)}
    assert sorted(asked) == sorted([("other", 0, 1000), (TOPIC, 0, 1000)])


def test_offsets_need_one_topic_and_a_partition_that_exists() -> None:
    bounds = {(TOPIC, 0): (0, 20), ("other", 0): (0, 7)}
    with pytest.raises(BadRange, match="one topic"):
        resolve_ranges(bounds, [Bound(offset=1)], [], never)
    with pytest.raises(BadRange, match="partition 4"):
        resolve_ranges({(TOPIC, 0): (0, 20)}, [], [Bound(offset=1, partition=4)], never)


# -- the already-applied rule -------------------------------------------------------------------

def test_a_version_the_target_acknowledged_or_passed_is_already_applied() -> None:
    index = applied_index([task_ack("t-guid-1", 7)])
    assert classify(change(7, 0), index, [TASKS]) is Verdict.APPLIED
    assert classify(change(5, 1), index, [TASKS]) is Verdict.APPLIED


def test_a_version_no_ack_reaches_is_re_driven() -> None:
    index = applied_index([task_ack("t-guid-1", 7)])
    assert classify(change(8, 2), index, [TASKS]) is Verdict.REDRIVE
    assert classify(change(1, 0, record_id="t-guid-2"), index, [TASKS]) is Verdict.REDRIVE
    assert classify(change(9, 3, op="d"), index, [TASKS]) is Verdict.REDRIVE


def test_a_version_the_worker_holds_without_a_dead_letter_is_not_re_driven() -> None:
    ref = ("dataverse", "msdyn_projecttasks", "t-guid-1")
    index = applied_index([])
    # Seen by dedupe, never acked, never dead-lettered: parked (or a no-op) in the processor.
    assert classify(change(5, 0), index, [TASKS], {ref: 5}) is Verdict.IN_PROCESSOR
    # Dead-lettered at that version: re-driven; a version the worker never saw: lost, re-driven.
    assert classify(change(5, 0), index, [TASKS], {ref: 5}, {(ref, 5)}) is Verdict.REDRIVE
    assert classify(change(6, 1), index, [TASKS], {ref: 5}) is Verdict.REDRIVE


def test_dead_letters_name_their_source_record_and_version_at_every_stage() -> None:
    from dualwrite.ops.dlq import DeadLetter

    def letter(value: bytes, topic: str, key: bytes | None = None) -> DeadLetter:
        return DeadLetter(partition=0, offset=0, key=key, value=value, timestamp_ms=None,
                          headers={"dlq.original.topic": topic})

    cdc: dict[str, tuple[System, str]] = {TOPIC: ("dataverse", "msdyn_projecttasks")}
    at_ingest = record(rows.task(), 7, 0)
    sink = command("T", 9)
    letters = [letter(at_ingest.value or b"", TOPIC, at_ingest.key),
               letter(encode(sink), "sync.commands.finance"),
               letter(b"{not json", TOPIC, at_ingest.key)]
    assert dead_lettered(letters, cdc) == {
        (("dataverse", "msdyn_projecttasks", "t-guid-1"), 7),
        (("dataverse", "msdyn_projects", "guid-T"), 9)}


def test_every_selected_map_that_acked_the_record_must_have_reached_the_version() -> None:
    other = TASKS.model_copy(update={"name": "tasks_copy"})
    index = applied_index([task_ack("t-guid-1", 7), task_ack("t-guid-1", 4, "tasks_copy")])
    assert classify(change(7, 0), index, [TASKS, other]) is Verdict.REDRIVE
    assert classify(change(7, 0), index, [TASKS]) is Verdict.APPLIED


def test_rows_every_filter_refuses_tables_no_map_reads_tombstones_and_garbage_are_not_re_driven() -> None:
    index = applied_index([])
    assert classify(change(3, 0, msdyn_wbsid=None), index, [TASKS]) is Verdict.FILTERED
    assert classify(change(3, 0), index, []) is Verdict.FEED
    assert classify(change(3, 0), applied_index([task_ack("t-guid-1", 3)]), []) is Verdict.APPLIED
    tombstone = decode_change(record(None, 3, 1), "dataverse", "msdyn_projecttasks")
    assert classify(tombstone, index, [TASKS]) is Verdict.TOMBSTONE
    garbage = KafkaRecord(topic=TOPIC, partition=0, offset=2, key=b"{}", value=b"{not json",
                          headers=[], timestamp_ms=None)
    assert classify(decode_change(garbage, "dataverse", "msdyn_projecttasks"), index, [TASKS]) is Verdict.UNDECODABLE


def test_only_the_latest_record_of_a_source_record_is_kept_and_goes_back_with_the_retry_header() -> None:
    older, newer, other = change(3, 0), change(5, 4), change(4, 2, record_id="t-guid-2")
    latest = latest_per_record([newer, older, other])
    assert latest == {(TOPIC, "t-guid-1"): newer, (TOPIC, "t-guid-2"): other}
    [(topic, key, value, headers)] = redrive_records([newer])
    assert (topic, key, value) == (TOPIC, newer.record.key, newer.record.value)
    assert is_retry(headers) and dict(headers or [])["dualwrite.retry.from"] == f"replay:{TOPIC}:0:4".encode()
    assert RETRY_HEADER in dict(headers or [])


# -- repair -------------------------------------------------------------------------------------

class Base:
    def __init__(self, tables: dict[tuple[str, str], list[Row]]) -> None:
        self.tables = tables

    def rows(self, system: str, table: str) -> Sequence[Row]:
        return self.tables[system, table]

    def key_fields(self, table: str) -> tuple[str, ...]:
        return ("dataAreaId", "ProjectId")


def test_history_stands_in_for_the_replayed_table_and_a_deleted_record_is_absent() -> None:
    kept, deleted = change(3, 0, msdyn_subject="Kept"), change(6, 1, op="d", record_id="t-guid-2")
    base = Base({("dataverse", "msdyn_projects"): [rows.project()],
                 ("dataverse", "msdyn_projecttasks"): [rows.task(msdyn_subject="API")]})
    tables = HistoryTables(base, latest_per_record([kept, deleted]))
    assert [r["msdyn_subject"] for r in tables.rows("dataverse", "msdyn_projecttasks")] == ["Kept"]
    assert tables.rows("dataverse", "msdyn_projects") == [rows.project()]
    assert tables.key_fields("ProjectsV2") == ("dataAreaId", "ProjectId")


def test_repair_re_drives_the_latest_record_of_missing_and_different_rows_and_reports_the_rest() -> None:
    a, b, c = change(3, 0, record_id="a"), change(5, 1, record_id="b"), change(2, 2, record_id="c")
    latest = latest_per_record([a, b, c])
    report = MapReport("project_tasks", "dataverse msdyn_projecttasks", "finance ProjectTasks",
                       in_sync=["K-c"], missing=[("K-a", "a"), ("K-x", "x")],
                       different=[Difference("K-b", "b", {"Name": ("Work", "Edited")})],
                       extra=[("K-only-target", "rec-9")],
                       unresolved=[Unresolved("d", ("row:dataverse:msdyn_projects:p",), "lookup not found")])
    plan = repair_plan(MAPS, [report], latest, lambda m: TOPIC)
    assert plan.changes == [a, b]
    assert plan.reasons == {"K-a": "missing", "K-b": "different"}
    assert plan.extra == [("project_tasks", "K-only-target")]
    assert [why.split(":")[0] for _, why in plan.unresolved] == ["K-x", "source d"]


def test_repair_re_drives_a_record_once_however_many_rows_it_writes() -> None:
    roles = MAPS["resource_roles"]  # a fan-out map: one copy per legal entity
    assert roles.fan_out is not None
    one = change(3, 0, record_id="r-1")
    report = MapReport(roles.name, "", "", missing=[("K-1", "r-1@usmf"), ("K-2", "r-1@demf")])
    plan = repair_plan(MAPS, [report], latest_per_record([one]), lambda m: TOPIC)
    assert plan.changes == [one] and set(plan.reasons) == {"K-1", "K-2"}
