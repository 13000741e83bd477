"""A whole system per test: its own Kafka broker, both emulators, and the pipeline processes.

A fresh broker per test keeps tests independent without teaching every component a topic prefix;
it costs a few seconds and is what a user's deployment looks like.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

import httpx
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient
from pydantic import SecretStr

from dualwrite.apiclient import ApiSession
from dualwrite.kafka import LocalKafka
from dualwrite.ports import free_port
from dualwrite.stack import PIPELINE, Stack, StackConfig
from streams.maps import default_registry
from tests.support.kafka import end_offset, wait_for_leaders
from topics import apply_topics, catalog, cdc_topic


def local_kafka(workdir: Path, brokers: int = 1) -> LocalKafka:
    """A launcher on free ports: one node, or a cluster of `brokers` nodes (smaller heaps)."""
    if brokers == 1:
        return LocalKafka(workdir / "kafka", port=free_port(), controller_port=free_port(),
                          heap="512m")
    return LocalKafka(workdir / "kafka", brokers=brokers, heap="384m",
                      ports=[(free_port(), free_port()) for _ in range(brokers)])


@contextmanager
def fresh_kafka(workdir: Path, brokers: int = 1) -> Iterator[LocalKafka]:
    broker = local_kafka(workdir, brokers)
    broker.up(timeout=180)
    try:
        specs = catalog(partitions=3, replication=broker.replication,
                        cdc_tables=default_registry().cdc_tables())
        report = apply_topics({"bootstrap.servers": broker.bootstrap}, specs)
        assert report.ok, report.drifts
        wait_for_leaders(AdminClient({"bootstrap.servers": broker.bootstrap}), [s.name for s in specs])
        yield broker
    finally:
        broker.down()


@contextmanager
def running_stack(workdir: Path, *, pipeline: bool = True,
                  extra_env: dict[str, str] | None = None,
                  client_secret: SecretStr | None = None, brokers: int = 1,
                  workers: int = 1) -> Iterator[Stack]:
    """``client_secret``: the one both emulators accept and every process uses (a test that
    greps for leaks passes a distinctive one); ``brokers``: nodes of the Kafka (3: a cluster;
    ``LocalKafka(workdir / "kafka")`` finds its nodes again); ``workers``: worker processes in
    one consumer group."""
    with fresh_kafka(workdir, brokers) as broker:
        cfg = StackConfig(workdir=workdir, kafka_bootstrap=broker.bootstrap, workers=workers,
                          replication=broker.replication)
        if client_secret is not None:
            cfg = replace(cfg, client_secret=client_secret)
        stack = Stack(cfg, extra_env)
        try:
            stack.start_emulators()
            if pipeline:
                stack.start_pipeline()
            yield stack
        finally:
            stack.stop()


def create_row(api: ApiSession, entity_set: str, primary_key: str, body: dict[str, Any]) -> str:
    """POST a row as a user would (asserting success); its primary id from the representation."""
    response = api.request("POST", entity_set, json=body, headers={"Prefer": "return=representation"})
    assert response.status_code < 300, response.text
    return str(response.json()[primary_key])


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.5) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what} (last: {last!r})")


def admin(url: str) -> httpx.Client:
    return httpx.Client(base_url=f"{url}/_admin", timeout=10.0)


def read_topic(bootstrap: str, topic: str, timeout: float = 5.0) -> list[Any]:
    """Every record currently in `topic` (all partitions, from the start)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"reader-{time.time_ns()}",
                         "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    try:
        meta = consumer.list_topics(topic, timeout=10).topics[topic]
        parts = [TopicPartition(topic, p, 0) for p in meta.partitions]
        ends = {p.partition: end_offset(consumer, p) for p in parts}
        consumer.assign(parts)
        records: list[Any] = []
        left = {p for p, end in ends.items() if end > 0}
        deadline = time.monotonic() + timeout + sum(ends.values()) / 2000
        while left and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is not None and not msg.error():
                records.append(msg)
            # Done by position, not by count: a transactional producer's (the worker's) commit
            # markers take offsets that no record carries.
            for tp in consumer.position([TopicPartition(topic, p) for p in left]):
                if tp.offset >= ends[tp.partition]:
                    left.discard(tp.partition)
        return records
    finally:
        consumer.close()


def reproduce(bootstrap: str, topics: list[str]) -> int:
    """Produce every record of `topics` a second time, as an at-least-once redelivery would."""
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    count = 0
    for topic in topics:
        for msg in read_topic(bootstrap, topic):
            producer.produce(topic, key=msg.key(), value=msg.value(), headers=msg.headers())
            count += 1
            if count % 1000 == 0:
                producer.flush(30)
    assert producer.flush(60) == 0
    return count


def non_empty_topics(bootstrap: str, prefix: str) -> list[str]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "lister"})
    try:
        names = [t for t in consumer.list_topics(timeout=10).topics if t.startswith(prefix)]
        out = []
        for name in names:
            meta = consumer.list_topics(name, timeout=10).topics[name]
            if any(consumer.get_watermark_offsets(TopicPartition(name, p), timeout=10)[1] > 0
                   for p in meta.partitions):
                out.append(name)
        return sorted(out)
    finally:
        consumer.close()


def delete_groups(bootstrap: str, groups: list[str], timeout: float = 90.0) -> None:
    """Forget the committed offsets of stopped consumer groups (they restart from the earliest).
    A stopped worker is a static member (``--instance-id``) that does not leave its group: the
    group stays non-empty until the member's session times out (30 s), so this waits for that."""
    client = AdminClient({"bootstrap.servers": bootstrap})
    existing = {g.group_id for g in client.list_consumer_groups().result(30).valid}
    todelete = [g for g in groups if g in existing]
    deadline = time.monotonic() + timeout
    while todelete:
        futures = client.delete_consumer_groups(todelete, request_timeout=30)
        waiting = []
        for group, future in futures.items():
            try:
                future.result(30)
            except KafkaException as exc:
                if exc.args[0].code() != KafkaError.NON_EMPTY_GROUP or time.monotonic() > deadline:
                    raise
                waiting.append(group)
        todelete = waiting
        if todelete:
            time.sleep(1.0)


def group_ids(bootstrap: str) -> list[str]:
    client = AdminClient({"bootstrap.servers": bootstrap})
    return sorted(g.group_id for g in client.list_consumer_groups().result(30).valid)


def group_lag(bootstrap: str, group: str) -> int:
    """Records not yet committed by `group` over every topic it has committed offsets on."""
    client = AdminClient({"bootstrap.servers": bootstrap})
    from confluent_kafka import ConsumerGroupTopicPartitions

    result = client.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)])
    committed = result[group].result(30).topic_partitions
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"lag-{time.time_ns()}"})
    try:
        lag = 0
        for tp in committed:
            high = consumer.get_watermark_offsets(TopicPartition(tp.topic, tp.partition), timeout=10)[1]
            lag += max(0, high - max(tp.offset, 0))
        return lag
    finally:
        consumer.close()


def quiet(bootstrap: str, pause: float = 2.0) -> bool:
    """The worker has committed all its input and each sink all of its command topic, and still
    has ``pause`` seconds later (a write-back's echo, captured meanwhile, is new input): nothing
    is left to be written. A drift-free reconcile of some maps says nothing of the others'
    writes still under way (a seed's two-way conflict written back as a test began)."""
    from connectors.common.sink import SinkSettings
    from streams.config import StreamsConfig

    sinks = [SinkSettings(target=target) for target in ("dataverse", "finance")]
    worker = StreamsConfig.model_fields["app_id"].default

    def settled() -> bool:
        return group_lag(bootstrap, worker) == 0 and all(
            caught_up(bootstrap, sink.group, [sink.commands]) for sink in sinks)

    if not settled():
        return False
    time.sleep(pause)
    return settled()


def caught_up(bootstrap: str, group: str, topics: list[str]) -> bool:
    """`group` has committed to the current end of every non-empty partition of `topics`."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                         "enable.auto.commit": False})
    try:
        parts = [TopicPartition(t, p) for t in topics
                 for p in consumer.list_topics(t, timeout=10).topics[t].partitions]
        committed = {(tp.topic, tp.partition): tp.offset for tp in consumer.committed(parts, timeout=10)}
        for tp in parts:
            high = consumer.get_watermark_offsets(tp, timeout=10)[1]
            if high > 0 and committed[(tp.topic, tp.partition)] < high:
                return False
        return True
    finally:
        consumer.close()


def drift(stack: Stack, maps: Sequence[str] | None = None) -> dict[str, dict[str, int]]:
    """Maps (all, or ``maps``) that `dualwrite reconcile` finds out of step, with their counts."""
    return {r.map: r.counts() for r in stack.reconcile(maps) if r.drift}


def parked(stack: Stack) -> list[dict[str, Any]]:
    """What `dualwrite status --json` shows waiting in the processor (per map: count, oldest
    change, what it waits for, its age)."""
    proc = subprocess.run([sys.executable, "-m", "dualwrite", "status", "--json", "--timeout", "10"],
                          env={**os.environ, **stack.env}, capture_output=True, timeout=120, check=False)
    assert b"Traceback" not in proc.stderr, proc.stderr.decode()
    return list(json.loads(proc.stdout)["parked"])


def assert_reconciled(stack: Stack, timeout: float = 120.0) -> None:
    """Every map in sync as reconcile sees both systems (the last writes given ``timeout``)."""
    try:
        wait_for(lambda: not drift(stack), timeout, "every map in sync (reconcile)", interval=3.0)
    except AssertionError:
        raise AssertionError(f"reconcile finds drift: {drift(stack)}") from None


def exit_reasons(stack: Stack) -> list[str]:
    """The CRITICAL lines the stack's processes logged before exiting on purpose (the worker's
    watchdog names what it found stuck), so a test that counts restarts can say why."""
    lines: list[str] = []
    for log in sorted(stack.sup.log_dir.glob("*.log")):
        lines += [f"{log.stem}: {line.strip()[:300]}" for line in
                  log.read_text(errors="replace").splitlines() if "[CRITICAL]" in line]
    return lines


def replay_everything(stack: Stack, timeout: float = 180.0) -> dict[str, int]:
    """Stop the pipeline, append every CDC record again to its topic (each read twice), delete
    the worker's and the sinks' consumer groups so they start again from offset 0, restart, and
    wait until each group has read to the end of its topics. Returns the writes each emulator
    took meanwhile (by system): what a replay cost."""
    bootstrap = stack.env["DUALWRITE_KAFKA__BOOTSTRAP_SERVERS"]
    for name in PIPELINE:
        stack.sup.kill(name, signal.SIGTERM)
    cdc = non_empty_topics(bootstrap, "dataverse.cdc.") + non_empty_topics(bootstrap, "finance.cdc.")
    assert reproduce(bootstrap, cdc) > 0
    delete_groups(bootstrap, group_ids(bootstrap))
    with admin(stack.dv_url) as dv_admin, admin(stack.fo_url) as fo_admin:
        dv_admin.delete("/requests")
        fo_admin.delete("/requests")
        for name in PIPELINE:
            stack.sup.restart(name)
        # Not vacuous: each group must have committed to the end of the topics it reads again.
        read_by_worker = [t for t in cdc if t in {cdc_topic(sy, ta) for sy, ta in  # type: ignore[arg-type]
                                                  default_registry().cdc_tables()}]
        assert read_by_worker
        wait_for(lambda: caught_up(bootstrap, "dualwrite-streams", read_by_worker), timeout,
                 "the worker to re-read every CDC record")
        for target in ("finance", "dataverse"):
            group, commands = f"dualwrite-sink-{target}", [f"sync.commands.{target}"]
            wait_for(partial(caught_up, bootstrap, group, commands), timeout,
                     f"the {target} sink to re-read every command")
        return {"dataverse": int(dv_admin.get("/requests").json()["writes"]),
                "finance": int(fo_admin.get("/requests").json()["writes"])}

