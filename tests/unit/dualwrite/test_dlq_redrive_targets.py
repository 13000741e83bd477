"""`dualwrite dlq retry` sends a dead letter back only to a topic the pipeline reads its input
from: a ``dlq.original.topic`` header is data, anyone who can write to the DLQ writes it."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from connectors.common.kafka import KafkaRecord
from dualwrite.commands import dlq as dlq_cli
from dualwrite.ops import dlq
from topics import dlq_headers

pytestmark = pytest.mark.unit


def letter(offset: int, topic: str) -> dlq.DeadLetter:
    headers = dlq_headers(stage="decode", error_class="DecodeError.not_json", message="bad",
                          map_name=None, topic=topic, partition=0, offset=offset, ts_ms=1)
    return dlq.dead_letter(KafkaRecord(topic="sync.dlq", partition=0, offset=offset,
                                       key=b"k%d" % offset, value=b"v%d" % offset,
                                       headers=list(headers), timestamp_ms=1))


@pytest.mark.parametrize("topic", ["sync.applied.finance", "sync.control", "sync.source-offsets",
                                   "sync.dlq", "__consumer_offsets", "evil-gate",
                                   "dualwrite-streams-versions-changelog", "finance.cdc.nope"])
def test_a_topic_outside_the_catalogs_inputs_is_refused(topic: str) -> None:
    bad = letter(1, topic)
    plan = dlq.retry_plan([bad])
    assert plan.records == [] and plan.refused == [bad]


def test_cdc_command_and_gate_topics_are_re_driven() -> None:
    topics = ["dataverse.cdc.msdyn_projects", "finance.cdc.projectsv2", "sync.commands.finance",
              "sync.commands.dataverse"]
    plan = dlq.retry_plan([letter(i, t) for i, t in enumerate(topics)])
    assert [r[0] for r in plan.records] == topics and plan.refused == []


def test_the_prefix_and_the_app_id_name_the_targets() -> None:
    plan = dlq.retry_plan([letter(0, "t1.sync.commands.finance"), letter(1, "sync.commands.finance"),
                           letter(2, "w2-gate"), letter(3, "dualwrite-streams-gate")],
                          topic_prefix="t1.", app_id="w2")
    assert [r[0] for r in plan.records] == ["t1.sync.commands.finance", "w2-gate"]
    assert [d.offset for d in plan.refused] == [1, 3]


def test_retry_names_and_counts_what_it_refuses(monkeypatch: pytest.MonkeyPatch) -> None:
    sent: list[object] = []
    letters = [letter(0, "sync.commands.finance"), letter(1, "sync.control"),
               letter(2, "[bold]__consumer_offsets")]
    def redrive(config: object, plan: list[object], **kw: object) -> int:
        sent.extend(plan)
        return len(plan)

    monkeypatch.setattr(dlq_cli, "_read", lambda timeout, prefix: letters)
    monkeypatch.setattr(dlq, "redrive", redrive)
    result = CliRunner().invoke(dlq_cli.app, ["retry", "--yes"])
    assert result.exit_code == 0, result.output
    assert [r[0] for r in sent] == ["sync.commands.finance"]  # type: ignore[index]
    assert "refused 0:1: its dlq.original.topic 'sync.control' is not" in result.stderr
    assert "'[bold]__consumer_offsets'" in result.stderr
    assert "2 dead letter(s) refused" in result.stderr and "re-drove 1 record(s)" in result.stderr
