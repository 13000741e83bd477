"""`dualwrite replay` reading and deciding, in events per second, next to raw consumption.

The P1 project workload (`bench.workload.project_events`) on a broker of its own, with an ack
on ``sync.applied.finance`` for each project's last version: the history of a pipeline that
applied everything, the case where a replay must cost no writes. Measured: what
``dualwrite replay --map projects --dry-run`` does before it would produce (`dualwrite.replay`:
read the acks, read the range, decode and classify every record), against a bare
confluent-kafka consumer reading the same topic from the start, in the same run. The re-drive
itself is the worker's P1 figure: a re-driven record costs what a live one does.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from confluent_kafka import Consumer, Producer, TopicPartition

from bench.figures import Figure
from bench.pipeline import broker
from bench.workload import project_events
from connectors.common.kafka import KafkaConfig
from dualwrite import replay as rp
from streams.maps import default_registry
from topics import Applied, applied_topic, cdc_topic, encode, target_key

__all__ = ["ReplayBench", "raw_consumption", "replay_figures", "run_replay_bench"]

GOAL = "(ceiling)"


@dataclass(frozen=True)
class ReplayBench:
    events: int
    replay_s: float
    raw_s: float
    already_applied: int

    @property
    def replay_eps(self) -> float:
        return self.events / self.replay_s

    @property
    def raw_eps(self) -> float:
        return self.events / self.raw_s


def replay_figures(result: ReplayBench) -> list[Figure]:
    return [Figure("replay_vs_raw", f"replay --dry-run, events/s read and classified vs raw "
                   f"confluent-kafka consumption ({result.events} events)", result.replay_eps, "/s",
                   result.raw_eps, "same run", "%", GOAL,
                   detail={"events": result.events, "replay_s": result.replay_s, "raw_s": result.raw_s,
                           "already_applied": result.already_applied})]


def raw_consumption(bootstrap: str, topic: str, expected: int, timeout: float = 300) -> float:
    """Seconds a bare consumer (assigned partitions, no group, no decoding) takes to read
    ``expected`` records of ``topic`` from the start."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "bench-raw",
                         "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    try:
        parts = consumer.list_topics(topic, timeout=30).topics[topic].partitions
        consumer.assign([TopicPartition(topic, p, 0) for p in parts])
        seen = 0
        started = time.perf_counter()
        deadline = time.monotonic() + timeout
        while seen < expected and time.monotonic() < deadline:
            seen += sum(1 for m in consumer.consume(5000, 0.5) if not m.error())
        if seen < expected:
            raise RuntimeError(f"raw consumer saw {seen}/{expected} records")
        return time.perf_counter() - started
    finally:
        consumer.close()


def _acks(bootstrap: str, records: int, updates: int) -> None:
    """An ack per project at its last version, as the Finance sink would have published."""
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "linger.ms": 20})
    last: dict[str, tuple[int, str]] = {}
    for _topic, pid, event in project_events(records, updates):
        if event.source.table == "msdyn_projects":
            last[pid] = (event.source.version_int, str((event.after or {})["msdyn_projectnumber"]))
    for pid, (version, number) in last.items():
        key: dict[str, str | int | float | bool | None] = {"dataAreaId": "usmf", "ProjectId": number}
        ack = Applied(command_id=f"projects:{pid}:{version}", map="projects", target="finance",
                      entity="ProjectsV2", key=key, op="upsert", source_version=version,
                      source_system="dataverse", source_table="msdyn_projects", source_id=pid,
                      fingerprint="bench", applied_ts_ms=0)
        producer.produce(applied_topic("finance"), key=target_key("ProjectsV2", key).encode(), value=encode(ack))
        producer.poll(0)
    if producer.flush(60) != 0:
        raise RuntimeError("bench acks not acknowledged by Kafka")


def run_replay_bench(workdir: Path, records: int = 2000, updates: int = 10) -> ReplayBench:
    """Own broker; ``records`` projects x ``updates`` versions, all acknowledged."""
    from bench.workload import produce

    registry = default_registry()
    topic = cdc_topic("dataverse", "msdyn_projects")
    with broker(workdir, registry.cdc_tables()) as kafka:
        produce({"bootstrap.servers": kafka.bootstrap}, project_events(records, updates))
        _acks(kafka.bootstrap, records, updates)
        events = records * updates
        raw_s = raw_consumption(kafka.bootstrap, topic, events)
        cfg = KafkaConfig(bootstrap_servers=kafka.bootstrap)
        started = time.perf_counter()
        index = rp.applied_index(rp.read_acks(cfg, [applied_topic("finance")], 60))
        ranges = rp.resolve_ranges(rp.watermarks(cfg, [topic], 30), [], [], rp.offset_lookup(cfg, 30))
        changes = (rp.decode_change(r, "dataverse", "msdyn_projects")
                   for r in rp.read_range(cfg, ranges, timeout=60))
        decided = rp.decide(changes, index, {("dataverse", "msdyn_projects"): [registry["projects"]]}, {}, set())
        replay_s = time.perf_counter() - started
        if decided.summary.reread != events or decided.chosen:
            raise RuntimeError(f"replay read {decided.summary.reread}/{events} events and would "
                               f"re-drive {len(decided.chosen)} (expected none)")
        return ReplayBench(events, replay_s, min(raw_s, raw_consumption(kafka.bootstrap, topic, events)),
                           decided.summary.verdicts[rp.Verdict.APPLIED])
