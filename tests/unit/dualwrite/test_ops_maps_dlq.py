"""`dualwrite maps` and `dualwrite dlq`: the pure parts (rows, filters, summaries, retry plans)."""

from __future__ import annotations

import orjson
import pytest

from connectors.common.kafka import KafkaRecord
from connectors.common.sinkstate import AppliedState
from dualwrite.ops import dlq, maps
from streams.maps import default_registry
from streams.pending import Pending
from streams.wire import PendingMsg, decode_gate
from topics import (
    Applied,
    Command,
    CommandSource,
    MapState,
    dlq_headers,
    encode,
    is_retry,
)

pytestmark = pytest.mark.unit


def letter(partition: int, offset: int, *, stage: str = "decode", map_name: str | None = None,
           error: str = "DecodeError.not_json", topic: str | None = "dataverse.cdc.msdyn_projects",
           value: bytes | None = b"{not json", key: bytes | None = b'{"id":"p-1"}') -> dlq.DeadLetter:
    headers = dlq_headers(stage=stage, error_class=error, message="bad", map_name=map_name,
                          topic=topic, partition=2, offset=40 + offset, ts_ms=1_700_000_000_000)
    return dlq.dead_letter(KafkaRecord(topic="sync.dlq", partition=partition, offset=offset,
                                       key=key, value=value, headers=list(headers),
                                       timestamp_ms=1_700_000_000_000))


# -- maps -----------------------------------------------------------------------------------

def test_map_rows_show_every_map_running_unless_a_state_says_otherwise():
    paused = MapState(map="projects", state="paused", reason="INC-42", ts_ms=5)
    rows = maps.map_rows(default_registry(), {"projects": paused})
    assert [r.name for r in rows] == [m.name for m in default_registry().maps]
    by_name = {r.name: r for r in rows}
    assert (by_name["projects"].state, by_name["projects"].reason, by_name["projects"].since_ms) == (
        "paused", "INC-42", 5)
    assert by_name["customers"].state == "running" and by_name["customers"].since_ms is None
    tasks = by_name["project_tasks"]
    assert tasks.source == "dataverse msdyn_projecttasks" and tasks.target == "finance ProjectTasks"
    assert tasks.direction == "to_finance"
    assert any("ProjectsV2" in d for d in tasks.depends_on)
    assert by_name["customers"].two_way == ["name"]
    assert orjson.loads(orjson.dumps(tasks.as_json()))["name"] == "project_tasks"


def test_decode_states_skips_tombstones_and_garbage():
    good = MapState(map="projects", state="paused", ts_ms=1)
    states = maps.decode_states({b"projects": encode(good), b"customers": None, b"x": b"nope"})
    assert states == {"projects": good}


def test_unknown_map_lists_the_maps_and_exits_2():
    with pytest.raises(maps.UnknownMap) as info:
        maps.resolve(default_registry(), "projets")
    assert info.value.exit_code == 2
    assert "projects" in str(info.value) and "project_tasks" in str(info.value)
    assert maps.resolve(default_registry(), "projects").name == "projects"


# -- dlq ------------------------------------------------------------------------------------

def test_dead_letter_reads_its_reason_headers():
    d = letter(1, 7, stage="transform", map_name="projects", error="TransformError")
    assert (d.stage, d.map, d.error_class, d.message) == ("transform", "projects", "TransformError", "bad")
    assert d.original_topic == "dataverse.cdc.msdyn_projects" and d.original_position == "2:47"
    assert d.ts_ms == 1_700_000_000_000 and d.position == (1, 7) and not d.retried
    assert d.value_json() is None and d.as_json()["position"] == "1:7"
    full = letter(0, 0, value=b'{"a": 1}').as_json(full=True)
    assert full["value"] == {"a": 1} and full["headers"]["dlq.stage"] == "decode"  # type: ignore[index]


def test_select_filters_by_stage_map_and_position():
    letters = [letter(0, 0), letter(1, 0, stage="transform", map_name="projects"),
               letter(1, 1, stage="sink", map_name="projects", topic="sync.commands.finance")]
    assert [d.position for d in dlq.select(letters, stage="transform")] == [(1, 0)]
    assert [d.position for d in dlq.select(letters, map_name="projects")] == [(1, 0), (1, 1)]
    assert [d.position for d in dlq.select(letters, positions=[(0, 0), (1, 1)])] == [(0, 0), (1, 1)]
    assert dlq.select(letters, stage="sink", positions=[(0, 0)]) == []
    assert dlq.find(letters, (1, 1)).stage == "sink"
    with pytest.raises(dlq.NotFound):
        dlq.find(letters, (9, 9))


def test_summary_counts_by_stage_map_and_error_class():
    letters = [letter(0, 0), letter(0, 1), letter(1, 0, stage="sink", map_name="projects",
                                                      error="ODataError")]
    summary = dlq.summarize(letters)
    assert summary.total == 3
    assert summary.by_stage == {"decode": 2, "sink": 1}
    assert summary.by_map == {"-": 2, "projects": 1}
    assert summary.by_error == {"DecodeError.not_json": 2, "ODataError": 1}
    assert summary.as_json()["by_error_class"] == summary.by_error


@pytest.mark.parametrize("text", ["1", "a:2", "1:", ":3", "1:2:3", "-1:2"])
def test_parse_position_rejects_what_is_not_partition_offset(text):
    with pytest.raises(ValueError, match="PARTITION:OFFSET"):
        dlq.parse_position(text)


def test_parse_position():
    assert dlq.parse_position(" 2:140 ") == (2, 140)


def test_retry_plan_sends_the_original_record_back_with_the_retry_header():
    planned = dlq.retry_plan([letter(1, 3), letter(0, 4, topic=None), letter(2, 5)])
    [(topic, key, value, headers)] = planned.records
    assert (topic, key, value) == ("dataverse.cdc.msdyn_projects", b'{"id":"p-1"}', b"{not json")
    assert is_retry(headers) and dict(headers or [])["dualwrite.retry.from"] == b"sync.dlq:1:3"
    assert [d.position for d in planned.unroutable] == [(0, 4)]
    assert [d.position for d in planned.repeats] == [(2, 5)]  # the same record, failed again


def test_a_change_the_gate_dead_lettered_goes_back_as_a_gate_message():
    item = Pending(id="projects:p-1:7", map="projects", op="upsert", row={"statecode": 5},
                   source=CommandSource(system="dataverse", table="msdyn_projects", id="p-1",
                                        version=7, ts_ms=1), born_ms=1)
    gate_letter = letter(2, 0, stage="transform", map_name="projects", error="TransformError",
                         topic="dualwrite-streams-gate", value=item.model_dump_json().encode(),
                         key=b"p-1")
    planned = dlq.retry_plan([gate_letter])
    [(topic, key, value, _headers)] = planned.records
    assert topic == "dualwrite-streams-gate" and key == b"p-1" and not planned.unroutable
    msg = decode_gate(value or b"")
    assert isinstance(msg, PendingMsg) and msg.item == item
    broken = letter(2, 1, stage="transform", topic="dualwrite-streams-gate", value=b"{}")
    assert dlq.retry_plan([broken]) == dlq.RetryPlan([], [broken], [])


def test_is_retry_reads_both_header_shapes():
    assert is_retry([("a", b"x"), ("dualwrite.retry", b"1")])
    assert is_retry({"dualwrite.retry": b"1"})
    assert not is_retry([("dualwrite.retry", b"0")]) and not is_retry(None) and not is_retry([])
    assert not is_retry(["garbage"])  # type: ignore[list-item]


def _command(version: int) -> Command:
    return Command(command_id=f"c{version}", map="projects", target="finance", entity="ProjectsV2",
                   key={"dataAreaId": "usmf", "ProjectId": "P-1"}, op="upsert",
                   fields={"ProjectName": f"v{version}"}, fingerprint=f"f{version}",
                   source=CommandSource(system="dataverse", table="msdyn_projects", id="p-1",
                                        version=version, ts_ms=1))


def test_a_sink_dead_letter_redriven_is_written_unless_a_newer_version_was_applied():
    # The sink records acks only for writes the target accepted: a rejected command left no
    # trace, so its re-driven copy is written; once a newer version landed, it is rightly old.
    state = AppliedState()
    rejected = _command(5)
    assert state.skip_reason(rejected) is None
    older = _command(4)
    state.record(Applied(command_id="c4", map="projects", target="finance", entity="ProjectsV2",
                         key=older.key, op="upsert", source_version=4, source_system="dataverse",
                         source_table="msdyn_projects", source_id="p-1", fingerprint="f4",
                         applied_ts_ms=1))
    assert state.skip_reason(rejected) is None
    newer = _command(6)
    state.record(Applied(command_id="c6", map="projects", target="finance", entity="ProjectsV2",
                         key=newer.key, op="upsert", source_version=6, source_system="dataverse",
                         source_table="msdyn_projects", source_id="p-1", fingerprint="f6",
                         applied_ts_ms=2))
    assert state.skip_reason(rejected) == "applied_version"
