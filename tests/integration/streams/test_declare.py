"""The worker's own topics exist, as Faust would create them, before it joins its group.

A CI run lost every change: the broker's metadata did not list the just-created gate topic when
the group leader assigned partitions, so the gate was assigned to nobody, and a static member
restarted by the watchdog took that assignment back unchanged on every restart. The same holds
for a topic the worker reads (a map enabled without `dualwrite topics apply`): the worker waits
for them, and refuses to start without them."""

from __future__ import annotations

import asyncio
import socket
import time
from pathlib import Path

import orjson
import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic

from streams import StreamsConfig, create_app
from streams.declare import TopicsNotReady, declare_internal_topics, internal_topics
from tests.integration.streams.harness import PARTITIONS, Reader, WorkerProcess, create_topics
from topics import read_headers

LATE = "dataverse.cdc.msdyn_ledgers"  # a CDC topic of one map, deleted before the worker starts


def _declare(bootstrap: str, app_id: str, timeout_s: float = 30.0, **overrides: object) -> list:
    config = StreamsConfig(bootstrap_servers=bootstrap, app_id=app_id, store="memory://",
                           **overrides)
    topics = internal_topics(create_app(config))
    asyncio.run(declare_internal_topics(topics, bootstrap_servers=config.bootstrap_list(),
                                        auth=config.aiokafka_auth(), timeout_s=timeout_s))
    return topics


def test_the_gate_and_changelog_topics_are_created_with_fausts_settings(kafka_bootstrap: str,
                                                                        unique: str) -> None:
    app_id = f"decl-{unique}"
    topics = _declare(kafka_bootstrap, app_id, partitions=4)
    names = {t.name for t in topics}
    assert names == {f"{app_id}-gate", *(f"{app_id}-{table}-changelog" for table in
                     ("versions", "facts", "targets", "parked", "pairs", "states"))}

    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    listed = admin.list_topics(timeout=10).topics
    assert all(len(listed[name].partitions) == 4 for name in names)  # listed on return
    configs = {r.name: f.result(30) for r, f in admin.describe_configs(
        [ConfigResource(ConfigResource.Type.TOPIC, n) for n in names]).items()}
    assert configs[f"{app_id}-gate"]["cleanup.policy"].value == "delete"  # offsets contiguous
    assert {configs[n]["cleanup.policy"].value for n in names - {f"{app_id}-gate"}} == {"compact"}

    assert _declare(kafka_bootstrap, app_id, partitions=4) == topics  # again: nothing to do


def test_a_topic_the_cluster_refuses_is_a_typed_error(kafka_bootstrap: str, unique: str) -> None:
    with pytest.raises(TopicsNotReady, match=r"refused to create the worker's topics.*gate"):
        _declare(kafka_bootstrap, f"decl-{unique}", replication=5)  # one broker


def test_an_unreachable_cluster_is_a_typed_error_after_the_timeout(unique: str) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = f"127.0.0.1:{s.getsockname()[1]}"
    started = time.monotonic()
    with pytest.raises(TopicsNotReady, match=r"does not list decl-.*-gate.*dualwrite kafka status"):
        _declare(closed, f"decl-{unique}", timeout_s=3)
    assert time.monotonic() - started < 30


def test_the_worker_declares_its_topics_before_it_joins_its_group(
        kafka_bootstrap: str, prefix: str, unique: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAMS_TEST_LOGLEVEL", "info")
    app_id = f"streams-{unique}"
    proc = WorkerProcess(kafka_bootstrap, app_id, prefix, tmp_path / "state", tmp_path / "w.log")
    proc.start()
    try:
        deadline = time.monotonic() + 120
        while ("Joined group" not in proc.log.read_text(errors="replace")
               and time.monotonic() < deadline):
            proc.check()
            time.sleep(0.5)
        log = proc.log.read_text(errors="replace")
        assert "Joined group" in log, proc.tail()
        declared = log.find(f"created the worker's topics {app_id}-gate")
        assert 0 <= declared < log.find("Joined group"), proc.tail()
        assert "Ignoring missing topic: '" + f"{app_id}-gate" not in log
    finally:
        proc.stop()


def test_a_worker_configured_for_other_partitions_than_its_topics_is_refused(
        kafka_bootstrap: str, unique: str) -> None:
    app_id = f"decl-{unique}"
    _declare(kafka_bootstrap, app_id, partitions=2)
    with pytest.raises(TopicsNotReady, match=rf"{app_id}-gate has 2, .* partitions where this "
                                             r"worker has 3 \(DUALWRITE_TOPICS__PARTITIONS\)"):
        _declare(kafka_bootstrap, app_id, partitions=3)


def _without(bootstrap: str, topic: str) -> AdminClient:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.delete_topics([topic])[topic].result(30)
    deadline = time.monotonic() + 30
    while topic in admin.list_topics(timeout=10).topics:
        assert time.monotonic() < deadline, f"{topic} still listed after its deletion"
        time.sleep(0.2)
    return admin


def _logged(proc: WorkerProcess, *texts: str, timeout: float = 120.0) -> str:
    """The first of `texts` the worker's log shows."""
    deadline = time.monotonic() + timeout
    while True:
        log = proc.log.read_text(errors="replace")
        found = [t for t in texts if t in log]
        if found:
            return min(found, key=log.find)
        proc.check()
        assert time.monotonic() < deadline, proc.tail()
        time.sleep(0.3)


def test_a_topic_the_worker_reads_that_appears_after_it_started_is_read(
        kafka_bootstrap: str, prefix: str, unique: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the wait, the leader left the missing topic out of the assignment ("Ignoring
    missing topic"), the broker then created it with its defaults, and a record written to it
    was not read in 90 s (nor ever, by a static member)."""
    topic = prefix + LATE
    admin = _without(kafka_bootstrap, topic)
    monkeypatch.setenv("STREAMS_TEST_LOGLEVEL", "info")
    proc = WorkerProcess(kafka_bootstrap, f"streams-{unique}", prefix, tmp_path / "state", tmp_path / "w.log")
    proc.args += ["--instance-id", "worker-a"]
    dlq = Reader(kafka_bootstrap, f"{prefix}sync.dlq", f"dlq-{unique}")
    try:
        proc.start()
        # The worker waits (and says so), or joins its group without the topic (the defect).
        if _logged(proc, "waiting for the topics this worker reads and writes", "Joined group") != "Joined group":
            assert topic in proc.tail() and "dualwrite topics apply" in proc.tail()
            assert topic not in admin.list_topics(timeout=10).topics  # waiting never creates it
        else:
            time.sleep(5)  # the group's assignment is made without the topic
        if topic not in admin.list_topics(timeout=10).topics:  # (the broker may have made it)
            admin.create_topics([NewTopic(topic, PARTITIONS, 1)])[topic].result(30)  # `topics apply`
        _logged(proc, "Worker ready")
        producer = Producer({"bootstrap.servers": kafka_bootstrap})
        for partition in range(PARTITIONS):  # every partition of it is someone's
            producer.produce(topic, key=b'{"id": "l-%d"}' % partition, value=b"not json", partition=partition)
        producer.flush(30)

        def read(records: list) -> set[str]:
            return {read_headers(r.headers()).get("dlq.original.partition", "") for r in records
                    if read_headers(r.headers()).get("dlq.original.topic") == topic}
        records = dlq.poll_until(lambda rs: len(read(rs)) == PARTITIONS, timeout=90, worker=proc)
        assert read(records) == {str(p) for p in range(PARTITIONS)}, proc.tail()
        assert f"Ignoring missing topic: '{topic}'" not in proc.log.read_text(errors="replace")
    finally:
        dlq.consumer.close()
        proc.stop()


def _refused(proc: WorkerProcess, *args: str) -> str:
    """Start the worker with `args`; it must exit 78 (a configuration it refuses): its log."""
    proc.args += list(args)
    proc.start()
    assert proc.proc is not None
    try:
        assert proc.proc.wait(120) == 78, proc.tail()
    finally:
        proc.stop()
    return proc.tail()


def test_a_worker_whose_topics_stay_missing_exits_78_naming_them(
        kafka_bootstrap: str, prefix: str, unique: str, tmp_path: Path) -> None:
    topic = prefix + LATE
    admin = _without(kafka_bootstrap, topic)
    log = _refused(WorkerProcess(kafka_bootstrap, f"streams-{unique}", prefix, tmp_path / "state",
                                 tmp_path / "w.log"), "--topics-wait", "2")
    assert f"1 topic(s) this worker reads or writes do not exist after 2 s: {topic}." in log
    assert "Create them with `dualwrite topics apply`" in log
    assert topic not in admin.list_topics(timeout=10).topics  # not created with the broker's defaults
    assert "Joined group" not in log


@pytest.mark.parametrize("engine", ["faust", "batch"])
def test_a_worker_logs_one_json_object_a_line_when_asked(
        kafka_bootstrap: str, prefix: str, unique: str, tmp_path: Path, engine: str) -> None:
    """``DUALWRITE_LOG_FORMAT=json``: what the worker logs (here why it refuses to start) is one
    JSON object a line, under either engine (Faust's worker sets up logging its own way)."""
    topic = prefix + LATE
    _without(kafka_bootstrap, topic)
    proc = WorkerProcess(kafka_bootstrap, f"streams-{unique}", prefix, tmp_path / "state", tmp_path / "w.log")
    proc.env["DUALWRITE_LOG_FORMAT"] = "json"
    _refused(proc, "--topics-wait", "2", "--engine", engine)
    lines = [orjson.loads(line) for line in proc.log.read_text().splitlines() if line.startswith("{")]
    [refusal] = [line for line in lines if "do not exist after 2 s" in line["message"]]
    assert refusal["level"] == "critical" and refusal["logger"] == "streams.app", lines
    assert refusal["message"].startswith("dualwrite worker: 1 topic(s) this worker reads or writes")
    assert refusal["ts"].endswith("Z")


def test_the_faust_agents_refuse_a_group_the_batch_engine_committed(
        kafka_bootstrap: str, prefix: str, unique: str, tmp_path: Path) -> None:
    """The batch engine marks its parked slots by a clock the Faust agents would take for later
    gate records (a change parked again could be skipped): its offsets carry a mark, and the
    agents, on a fresh disk too, exit 78 on such a group. The batch engine starts on it again."""
    group = f"streams-{unique}"
    topic = prefix + "dataverse.cdc.msdyn_projects"
    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    producer.produce(topic, key=b'{"id":"p-1"}', value=b"not json", partition=0)
    producer.flush(30)
    batch = WorkerProcess(kafka_bootstrap, group, prefix, tmp_path / "batch", tmp_path / "batch.log")
    batch.args += ["--engine", "batch"]
    batch.start()
    probe = Consumer({"bootstrap.servers": kafka_bootstrap, "group.id": group})
    try:
        deadline = time.monotonic() + 120
        while probe.committed([TopicPartition(topic, 0)], timeout=10)[0].offset < 1:
            assert time.monotonic() < deadline, batch.tail()
            batch.check()
            time.sleep(0.5)
    finally:
        probe.close()
        batch.stop()
    log = _refused(WorkerProcess(kafka_bootstrap, group, prefix, tmp_path / "faust", tmp_path / "faust.log"),
                   "--engine", "faust")
    assert f"group {group} was committed by the batch engine" in log
    assert "--engine batch" in log and "Joined group" not in log
    again = WorkerProcess(kafka_bootstrap, group, prefix, tmp_path / "batch", tmp_path / "batch.log")
    again.args += ["--engine", "batch", "--log-level", "info"]
    assert _logged_ready(again) == "Worker ready"


def _logged_ready(proc: WorkerProcess) -> str:
    proc.start()
    try:
        return _logged(proc, "Worker ready")
    finally:
        proc.stop()


def test_a_worker_whose_cdc_topic_is_sized_unlike_it_exits_78_naming_it(
        kafka_bootstrap: str, unique: str, tmp_path: Path) -> None:
    """Ingest keeps its `versions` table partitioned like the CDC topics: a record in partition 5
    of a six-partition topic crashed the ingest agent (Faust's PartitionsMismatch) and nothing
    more was read."""
    prefix = f"t{unique}."
    wide = f"{prefix}dataverse.cdc.msdyn_projects"
    create_topics(kafka_bootstrap, prefix, sizes={"dataverse.cdc.msdyn_projects": PARTITIONS + 3})
    log = _refused(WorkerProcess(kafka_bootstrap, f"streams-{unique}", prefix, tmp_path / "state",
                                 tmp_path / "w.log"))
    assert f"{wide} has {PARTITIONS + 3} partitions where this worker has {PARTITIONS} " in log
    assert "DUALWRITE_TOPICS__PARTITIONS" in log and "Joined group" not in log
