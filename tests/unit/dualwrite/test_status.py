"""`dualwrite status`: the pure parts (lag arithmetic, summaries, health, JSON shape) and --help."""

from __future__ import annotations

from dataclasses import replace

import orjson
import pytest
from rich.console import Console
from typer.testing import CliRunner

from dualwrite.cli import app as cli_app
from dualwrite.commands import status as status_command
from dualwrite.ops.dlq import DeadLetter
from dualwrite.ops.status import (
    AppliedRow,
    DlqSummary,
    GroupLag,
    MapRow,
    SourceRow,
    StatusReport,
    TopicLag,
    health_problems,
    map_rows,
    parse_since,
    report_json,
    summarize_dlq,
    summarize_parked,
    tables,
    topic_lags,
)
from streams import gate
from streams.status import parked_entries
from topics import MapState, dlq_headers, read_headers

pytestmark = pytest.mark.unit

NOW = 1_800_000_000_000


def empty_report(**changes: object) -> StatusReport:
    report = StatusReport(
        bootstrap="b:9092", now_ms=NOW, maps=(MapRow("projects", "running", None, None, None),),
        groups=(), parked_available=True, parked=(),
        dlq=summarize_dlq([], None, NOW), sources=(), applied=())
    return replace(report, **changes)  # type: ignore[arg-type]


def test_lag_is_end_minus_committed_summed_per_topic() -> None:
    committed = {("sync.commands.finance", 0): 2, ("sync.commands.finance", 1): 7,
                 ("finance.cdc.projectsv2", 0): 10}
    marks = {("sync.commands.finance", 0): (0, 5), ("sync.commands.finance", 1): (0, 7),
             ("finance.cdc.projectsv2", 0): (0, 10)}
    assert topic_lags(committed, marks) == [
        TopicLag("finance.cdc.projectsv2", 1, 10, 10, 0),
        TopicLag("sync.commands.finance", 2, 9, 12, 3),
    ]


def test_lag_without_a_commit_counts_from_the_start_and_never_below_zero() -> None:
    # No committed offset: the group would start at the earliest retained offset (4).
    # A committed offset below the start (records deleted by retention) counts from the start,
    # and the records between them (1..4) as expired: the group never read them.
    # A committed offset past the end (topic recreated) is no negative lag.
    committed = {("t", 0): -1001, ("t", 1): 1, ("t", 2): 50, ("gone", 0): 3}
    marks = {("t", 0): (4, 10), ("t", 1): (5, 8), ("t", 2): (0, 20)}
    [lag] = topic_lags(committed, marks)
    assert lag == TopicLag("t", 3, 51, 38, 6 + 3 + 0, expired=4)


def test_group_lag_sums_its_topics_and_names_its_condition() -> None:
    group = GroupLag("g", "worker", True, (TopicLag("a", 1, 1, 3, 2), TopicLag("b", 1, 0, 5, 5)))
    assert group.lag == 7 and group.condition == "committing"
    assert GroupLag("g", "worker", False, (), "stable", 1).condition == "running, nothing committed yet"
    assert GroupLag("g", "worker", False, (), "dead", 0).condition == "not started"


def test_map_rows_default_to_running_and_keep_unknown_maps() -> None:
    rows = map_rows(["projects", "customers"], [
        MapState(map="customers", state="paused", reason="flood", ts_ms=NOW - 90_000),
        MapState(map="retired", state="running", ts_ms=NOW - 1_000),
        ("broken", "wrong_shape: map missing"),
    ], NOW)
    assert rows == [
        MapRow("broken", "unreadable", "wrong_shape: map missing", None, None),
        MapRow("customers", "paused", "flood", NOW - 90_000, 90.0),
        MapRow("projects", "running", None, None, None),
        MapRow("retired", "running", None, NOW - 1_000, 1.0),
    ]


def test_parked_summary_counts_per_map_with_the_oldest() -> None:
    table = {
        "present:ProjectsV2(ProjectId='P1',dataAreaId='usmf')": {"waiting": [
            {"id": "project_tasks:t2:3", "map": "project_tasks", "parked_ms": NOW - 1_000},
            {"id": "project_tasks:t1:1", "map": "project_tasks", "parked_ms": NOW - 400_000}]},
        "row:dataverse:cdm_companies:c1": {"waiting": [
            {"id": "projects:p1:7", "map": "projects", "parked_ms": NOW - 5_000}]},
    }
    summary = summarize_parked(parked_entries(table.items(), NOW))
    assert [(p.map, p.count, p.oldest_change_id, p.oldest_age_s) for p in summary] == [
        ("project_tasks", 2, "project_tasks:t1:1", 400.0), ("projects", 1, "projects:p1:7", 5.0)]
    assert summary[0].oldest_waits_for.startswith("present:ProjectsV2(")


def test_parked_summary_reads_chunked_slots_and_forgets_a_released_one() -> None:
    """Slots keep their items in chunks beside them (`streams.gate`): every waiting change is
    shown with its age, and a slot once released shows nothing, its history notwithstanding."""
    table: dict[str, object] = {}

    def write(writes: list[tuple[str, object]]) -> None:
        for key, value in writes:
            if value is None:
                table.pop(key, None)
            else:
                table[key] = value

    project = "present:ProjectsV2(ProjectId='P1',dataAreaId='usmf')"
    company = "row:dataverse:cdm_companies:c1"
    actuals = [{"id": f"actuals:a{n}:1", "map": "actuals", "parked_ms": NOW - 1_000 * n}
               for n in range(1, 251)]  # more than one chunk
    for offset, item in enumerate(actuals):
        write(gate.park(project, [item], offset, table.get)[0])
    write(gate.park(company, [{"id": "projects:p1:7", "map": "projects", "parked_ms": NOW - 5_000}],
                    300, table.get)[0])
    summary = summarize_parked(parked_entries(table.items(), NOW))
    assert [(p.map, p.count, p.oldest_change_id, p.oldest_waits_for, p.oldest_age_s) for p in summary] == [
        ("actuals", 250, "actuals:a250:1", project, 250.0), ("projects", 1, "projects:p1:7", company, 5.0)]
    write(gate.release(project, 400, table.get)[0])
    assert [p.map for p in summarize_parked(parked_entries(table.items(), NOW))] == ["projects"]


def letter(stage: str, map_name: str | None, error_class: str, ts_ms: int | None,
           record_ts_ms: int | None = None) -> DeadLetter:
    """A dead letter as `dualwrite.ops.dlq` reads it, from real `topics.dlq_headers`."""
    headers = read_headers(dlq_headers(stage=stage, map_name=map_name, error_class=error_class,
                                       message="m", ts_ms=ts_ms))
    return DeadLetter(partition=0, offset=0, key=None, value=None, headers=headers,
                      timestamp_ms=record_ts_ms)


def test_dlq_summary_counts_by_stage_map_class_and_recent_since() -> None:
    letters = [letter("decode", None, "DecodeError", NOW - 7_200_000),
               letter("sink", "projects", "HTTPStatusError", NOW - 60_000),
               letter("sink", "projects", "HTTPStatusError", None, record_ts_ms=NOW - 30_000),
               letter("sink", "projects", "HTTPStatusError", None)]
    summary = summarize_dlq(letters, NOW - 3_600_000, NOW)
    assert summary.total == 4 and summary.recent == 2
    assert summary.newest_ts_ms == NOW - 30_000 and summary.newest_age_s == 30.0
    assert [(c.stage, c.map, c.error_class, c.count) for c in summary.counts] == [
        ("sink", "projects", "HTTPStatusError", 3), ("decode", "-", "DecodeError", 1)]
    assert summarize_dlq(letters, None, NOW).recent == 4
    assert summarize_dlq([], None, NOW) == DlqSummary(0, None, 0, None, None, ())


@pytest.mark.parametrize(("text", "expected"), [
    ("90", NOW - 90_000), ("15m", NOW - 900_000), ("2h", NOW - 7_200_000),
    ("1d", NOW - 86_400_000), ("0.5s", NOW - 500),
    ("2027-01-15T08:00:00Z", 1_800_000_000_000),
    ("2027-01-15T08:00:00", 1_800_000_000_000),  # no zone: UTC
    ("2027-01-15T09:00:00+01:00", 1_800_000_000_000),
])
def test_parse_since(text: str, expected: int) -> None:
    assert parse_since(text, NOW) == expected


def test_parse_since_rejects_garbage() -> None:
    with pytest.raises(ValueError, match="neither a duration"):
        parse_since("yesterday", NOW)


def test_healthy_report_has_no_problems() -> None:
    assert health_problems(empty_report(), 300) == []


def test_every_reason_for_attention_is_named() -> None:
    from dualwrite.ops.status import ParkedSummary

    report = empty_report(
        maps=(MapRow("customers", "paused", "flood of bad rows", NOW - 1, 0.0),
              MapRow("projects", "running", None, None, None),
              MapRow("odd", "unreadable", "not_json", None, None)),
        dlq=summarize_dlq([letter("decode", None, "DecodeError", NOW)], NOW - 60_000, NOW),
        parked=(ParkedSummary("project_tasks", 2, "project_tasks:t1:1", "paused:project_tasks@0", 301.0),
                ParkedSummary("projects", 1, "projects:p1:7", "row:x", 299.0)))
    assert health_problems(report, 300) == [
        "map customers is paused: flood of bad rows",
        "map odd: sync.control record cannot be read (not_json)",
        "1 dead letter(s) on sync.dlq since the --dlq-since time",
        "2 change(s) of map project_tasks parked; the oldest for 301s (> 300s), waiting for "
        "paused:project_tasks@0",
    ]


def test_records_deleted_before_a_group_read_them_are_named_and_shown() -> None:
    lags = topic_lags({("dataverse.cdc.msdyn_projects", 0): 100, ("dataverse.cdc.msdyn_projects", 1): 900},
                      {("dataverse.cdc.msdyn_projects", 0): (500, 700),
                       ("dataverse.cdc.msdyn_projects", 1): (500, 950)})
    assert [(t.lag, t.expired) for t in lags] == [(200 + 50, 400)]
    report = empty_report(groups=(GroupLag("dualwrite-streams", "worker", True, tuple(lags)),))
    assert health_problems(report, 300) == [
        "400 record(s) of dataverse.cdc.msdyn_projects were deleted by retention before group "
        "dualwrite-streams (worker) read them: run `dualwrite reconcile`, then `dualwrite replay "
        "--repair` for what differs"]
    console = Console(width=200, record=True)
    for table in tables(report):
        console.print(table)
    assert "250 (+400 expired)" in console.export_text()


def test_old_dead_letters_before_since_are_not_a_problem() -> None:
    report = empty_report(dlq=summarize_dlq([letter("decode", None, "E", NOW - 10_000)],
                                            NOW - 5_000, NOW))
    assert health_problems(report, 300) == []


def test_json_shape_names_every_section() -> None:
    report = empty_report(
        groups=(GroupLag("dualwrite-sink-finance", "sink finance", True,
                         (TopicLag("sync.commands.finance", 3, 2, 5, 3),)),),
        sources=(SourceRow("finance", "ProjectsV2", False, NOW - 1_000, 1.0),),
        applied=(AppliedRow("finance", 7, 4),), problems=("map x is paused",))
    doc = orjson.loads(orjson.dumps(report_json(report)))
    assert set(doc) == {"bootstrap", "now_ms", "maps", "groups", "parked_available", "parked", "dlq",
                        "sources", "applied", "budget_note", "problems", "healthy"}
    assert doc["healthy"] is False and doc["problems"] == ["map x is paused"]
    assert doc["groups"] == [{"group": "dualwrite-sink-finance", "role": "sink finance",
                              "started": True, "lag": 3, "condition": "committing",
                              "state": "unknown", "members": 0, "topics": [
                                  {"topic": "sync.commands.finance", "partitions": 3,
                                   "committed": 2, "end": 5, "lag": 3, "expired": 0}]}]
    assert doc["dlq"] == {"total": 0, "since_ms": None, "recent": 0, "newest_ts_ms": None,
                          "newest_age_s": None, "counts": []}
    assert doc["sources"][0]["snapshot_done"] is False
    assert doc["applied"] == [{"target": "finance", "published": 7, "retained": 4}]
    assert "Prometheus" in doc["budget_note"]
    assert report_json(empty_report())["healthy"] is True


def test_tables_render_one_per_section_and_say_where_the_budget_is() -> None:
    report = empty_report(parked_available=False,
                          maps=(MapRow("customers", "paused", "[bad] rows", NOW, 0.0),))
    console = Console(width=200, record=True)
    rendered = tables(report)
    assert len(rendered) == 7
    for table in rendered:
        console.print(table)
    text = console.export_text()
    assert "[bad] rows" in text and "the worker never ran" in text
    assert "Prometheus" in text and "(no record)" not in text


def test_status_help() -> None:
    result = CliRunner().invoke(status_command.app, ["--help"])
    assert result.exit_code == 0
    for option in ("--json", "--app-id", "--dlq-since", "--max-parked-age", "--timeout",
                   "--finance-group", "--dataverse-group"):
        assert option in result.output
    assert "--topic-prefix" not in result.output


def test_status_is_a_dualwrite_command() -> None:
    result = CliRunner().invoke(cli_app, ["status", "--help"])
    assert result.exit_code == 0 and "--dlq-since" in result.output


def test_bad_dlq_since_is_a_usage_error() -> None:
    result = CliRunner().invoke(status_command.app, ["--dlq-since", "yesterday"])
    assert result.exit_code == 2


def test_unreachable_broker_exits_1_with_a_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    from dualwrite.ops import status as ops
    from dualwrite.ops.errors import KafkaUnreachable

    def unreachable(*_: object) -> StatusReport:
        raise KafkaUnreachable("b:9092", "Broker transport failure")

    monkeypatch.setattr(ops, "gather", unreachable)
    result = CliRunner().invoke(status_command.app, ["--json"])
    assert result.exit_code == 1
    assert "dualwrite kafka status" in result.output and "b:9092" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_a_delete_of_a_record_never_written_is_counted_apart_and_raises_no_alarm() -> None:
    """It waits for a create that may still come: held by design, not stuck."""
    table = {
        "key:project_tasks:t9": {"waiting": [
            {"id": "project_tasks:t9:5", "map": "project_tasks", "op": "delete",
             "source": {"id": "t9"}, "parked_ms": NOW - 900_000}]},
        "present:ProjectsV2(ProjectId='P1',dataAreaId='usmf')": {"waiting": [
            {"id": "project_tasks:t2:3", "map": "project_tasks", "op": "upsert",
             "source": {"id": "t2"}, "parked_ms": NOW - 1_000}]},
        "key:projects:p4": {"waiting": [  # an upsert waiting on a key fact (a lookup) is not held
            {"id": "projects:x:1", "map": "projects", "op": "upsert", "source": {"id": "x"},
             "parked_ms": NOW - 2_000}]},
        "key:customers:c7": {"waiting": [
            {"id": "customers:c7:2", "map": "customers", "op": "delete", "source": {"id": "c7"},
             "parked_ms": NOW - 900_000}]},
    }
    summary = {p.map: p for p in summarize_parked(parked_entries(table.items(), NOW))}
    assert (summary["project_tasks"].count, summary["project_tasks"].unwritten_deletes) == (1, 1)
    assert summary["project_tasks"].oldest_age_s == 1.0
    assert (summary["projects"].count, summary["projects"].unwritten_deletes) == (1, 0)
    assert (summary["customers"].count, summary["customers"].unwritten_deletes) == (0, 1)
    report = empty_report(parked=tuple(summary.values()))
    assert health_problems(report, max_parked_age_s=300) == []


def test_the_oldest_parked_change_names_the_map_that_brings_its_record() -> None:
    """Issue 12: text, --json and the --max-parked-age line name the waited-for record and the
    map that would bring it."""
    from streams.maps import default_registry

    table = {
        "present:ProjectsV2(ProjectId='P1',dataAreaId='usmf')": {"waiting": [
            {"id": "project_tasks:t1:1", "map": "project_tasks", "parked_ms": NOW - 400_000}]},
        "row:dataverse:msdyn_projecttasks:t0": {"waiting": [
            {"id": "project_tasks:t9:1", "map": "project_tasks", "parked_ms": NOW - 1_000}]},
    }
    [summary] = summarize_parked(parked_entries(table.items(), NOW), default_registry())
    assert summary.oldest_brought_by == ("projects",)
    report = empty_report(parked=(summary,))
    assert health_problems(report, 300) == [
        "2 change(s) of map project_tasks parked; the oldest for 400s (> 300s), waiting for "
        "present:ProjectsV2(ProjectId='P1',dataAreaId='usmf'); the projects map brings it: run "
        "its initial sync or create the row"]
    doc = orjson.loads(orjson.dumps(report_json(report)))
    assert doc["parked"][0]["oldest_brought_by"] == ["projects"]
    assert doc["parked"][0]["oldest_hint"].startswith("the projects map brings it")
    console = Console(width=300, record=True)
    for table_ in tables(report):
        console.print(table_)
    text = console.export_text()
    assert "brought by" in text and "the projects map brings it" in text


def test_the_parked_age_threshold_comes_from_settings_unless_the_option_is_given(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from dualwrite.ops import status as ops

    seen: list[float] = []

    def fake_gather(_settings: object, options: object, *_: object) -> StatusReport:
        seen.append(options.max_parked_age_s)  # type: ignore[attr-defined]
        return empty_report()

    monkeypatch.setattr(ops, "gather", fake_gather)
    monkeypatch.setenv("DUALWRITE_PROCESSOR__MAX_PARKED_AGE_S", "42")
    assert CliRunner().invoke(status_command.app, ["--json"]).exit_code == 0
    assert CliRunner().invoke(status_command.app, ["--json", "--max-parked-age", "7"]).exit_code == 0
    assert seen == [42.0, 7.0]
