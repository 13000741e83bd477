"""`dualwrite maps` and `dualwrite dlq` against a real broker (topics isolated by a prefix, as
`dualwrite worker --topic-prefix` does)."""

from __future__ import annotations

import json
import time

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic
from typer.testing import CliRunner

from connectors.common.kafka import KafkaConfig, read_records
from dualwrite.cli import app
from tests.support.kafka import wait_for_leaders
from topics import dlq_headers, is_retry, read_headers

pytestmark = pytest.mark.integration

runner = CliRunner()


@pytest.fixture
def prefix(kafka_bootstrap: str, unique: str) -> str:
    name = f"o{unique}."
    topics = [NewTopic(name + "sync.control", 1, 1, config={"cleanup.policy": "compact"}),
              NewTopic(name + "sync.dlq", 3, 1),
              NewTopic(name + "dataverse.cdc.msdyn_projects", 3, 1),
              NewTopic(name + "sync.commands.finance", 3, 1)]
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    for future in admin.create_topics(topics).values():
        future.result(30)
    wait_for_leaders(admin, [t.topic for t in topics])
    return name


def dw(kafka_bootstrap: str, prefix: str, *args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, [*args, "--topic-prefix", prefix],
                           env={"DUALWRITE_KAFKA__BOOTSTRAP_SERVERS": kafka_bootstrap})
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def test_pause_then_list_shows_paused_with_the_reason_and_resume_runs_again(kafka_bootstrap, prefix):
    code, out, _ = dw(kafka_bootstrap, prefix, "maps", "list", "--json")
    assert code == 0
    assert {m["name"]: m["state"] for m in json.loads(out)["maps"]}["projects"] == "running"

    code, _, err = dw(kafka_bootstrap, prefix, "maps", "pause", "projects", "--reason", "INC-42")
    assert code == 0 and "paused" in err
    code, out, _ = dw(kafka_bootstrap, prefix, "maps", "list", "--json")
    [projects] = [m for m in json.loads(out)["maps"] if m["name"] == "projects"]
    assert (projects["state"], projects["reason"]) == ("paused", "INC-42")
    assert projects["since_ms"] <= time.time() * 1000
    code, out, _ = dw(kafka_bootstrap, prefix, "maps", "list")
    assert code == 0 and "paused" in out and "INC-42" in out and "1 paused: projects" in out

    code, _, err = dw(kafka_bootstrap, prefix, "maps", "pause", "projects")
    assert code == 0 and "already paused" in err  # idempotent: nothing sent

    code, _, err = dw(kafka_bootstrap, prefix, "maps", "resume", "projects")
    assert code == 0 and "resumed" in err
    code, out, _ = dw(kafka_bootstrap, prefix, "maps", "list", "--json")
    assert {m["name"]: m["state"] for m in json.loads(out)["maps"]}["projects"] == "running"
    records = read_records(KafkaConfig(bootstrap_servers=kafka_bootstrap), prefix + "sync.control")
    assert [json.loads(r.value or b"")["state"] for r in records] == ["paused", "running"]


def test_unknown_map_exits_2_and_a_missing_topic_says_to_apply_the_catalog(kafka_bootstrap, prefix):
    code, _, err = dw(kafka_bootstrap, prefix, "maps", "pause", "projets")
    assert code == 2 and "project_tasks" in err
    code, _, err = dw(kafka_bootstrap, "nowhere.", "dlq", "list")
    assert code == 1 and "dualwrite topics apply" in err


def test_dlq_list_show_and_retry(kafka_bootstrap, prefix):
    origin = prefix + "dataverse.cdc.msdyn_projects"
    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    letters = [
        (b'{"id":"p-1"}', b"{not json", dlq_headers(stage="decode", error_class="DecodeError.not_json",
                                                    message="not JSON", topic=origin, partition=0,
                                                    offset=3, ts_ms=1)),
        (b'{"id":"p-2"}', b'{"op": "u"}', dlq_headers(stage="decode", error_class="DecodeError.wrong_shape",
                                                      message="wrong shape", topic=origin,
                                                      partition=1, offset=4, ts_ms=2)),
        (b"ProjectsV2(...)", b'{"command_id": "c1"}', dlq_headers(
            stage="sink", error_class="ODataError", message="400: bad field", map_name="projects",
            topic=prefix + "sync.commands.finance", partition=2, offset=9, http_status=400, ts_ms=3)),
    ]
    for key, value, headers in letters:
        producer.produce(prefix + "sync.dlq", key=key, value=value, headers=headers, partition=0)
        producer.flush(10)

    code, out, _ = dw(kafka_bootstrap, prefix, "dlq", "list", "--json")
    assert code == 0
    listed = json.loads(out)
    assert listed["summary"] == {"total": 3, "by_stage": {"decode": 2, "sink": 1},
                                 "by_map": {"-": 2, "projects": 1},
                                 "by_error_class": {"DecodeError.not_json": 1,
                                                    "DecodeError.wrong_shape": 1, "ODataError": 1}}
    assert [d["position"] for d in listed["dead_letters"]] == ["0:0", "0:1", "0:2"]  # newest last
    code, out, _ = dw(kafka_bootstrap, prefix, "dlq", "list", "--stage", "sink")
    assert code == 0 and "ODataError" in out and "DecodeError" not in out.split("dead letter(s)")[0]
    code, out, _ = dw(kafka_bootstrap, prefix, "dlq", "list", "--map", "projects", "--json")
    assert [d["position"] for d in json.loads(out)["dead_letters"]] == ["0:2"]

    code, out, _ = dw(kafka_bootstrap, prefix, "dlq", "show", "0:1", "--json")
    shown = json.loads(out)
    assert code == 0 and shown["value"] == {"op": "u"} and shown["headers"]["dlq.stage"] == "decode"
    code, out, _ = dw(kafka_bootstrap, prefix, "dlq", "show", "0:2")
    assert code == 0 and "dlq.http.status" in out and "command_id" in out
    code, _, err = dw(kafka_bootstrap, prefix, "dlq", "show", "0:99")
    assert code == 2 and "dualwrite dlq list" in err

    code, _, err = dw(kafka_bootstrap, prefix, "dlq", "retry", "--offset", "0:0")
    assert code == 2 and "--yes" in err  # not a terminal and not confirmed: nothing sent
    code, _, err = dw(kafka_bootstrap, prefix, "dlq", "retry", "--offset", "0:0", "--offset", "0:2",
                      "--yes")
    assert code == 0 and "re-drove 2 record(s)" in err
    config = KafkaConfig(bootstrap_servers=kafka_bootstrap)
    [again] = read_records(config, origin)
    assert (again.key, again.value) == (b'{"id":"p-1"}', b"{not json") and is_retry(again.headers)
    assert read_headers(again.headers)["dualwrite.retry.from"] == "sync.dlq:0:0"
    [command] = read_records(config, prefix + "sync.commands.finance")
    assert command.value == b'{"command_id": "c1"}' and is_retry(command.headers)


@pytest.mark.parametrize("args", [["maps", "list"], ["maps", "pause", "projects"],
                                  ["dlq", "list"], ["dlq", "retry", "--yes"]])
def test_unreachable_broker_exits_1_with_the_address_and_a_hint(args):
    result = runner.invoke(app, [*args, "--timeout", "1"],
                           env={"DUALWRITE_KAFKA__BOOTSTRAP_SERVERS": "127.0.0.1:1"})
    assert result.exit_code == 1
    assert "127.0.0.1:1" in result.stderr and "dualwrite kafka up" in result.stderr
    assert "Traceback" not in result.output
