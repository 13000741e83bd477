"""`dualwrite bench pipeline`: processor replay throughput and sink requests per change, each next
to a peer measured in the same run on the same broker.

1. Replay: a CDC topic of project changes is pre-filled; the processor (`dualwrite worker`, sinks
   off) turns it into commands. Its rate (first to last command) is compared with raw aiokafka
   consumption of the same topic and a naive per-event Faust agent that writes a table per event.
2. Burst: every record is updated ten times within one flush window; the Finance sink writes the
   burst to the Finance emulator, next to a naive sink that sends one request per command. The
   figure is requests (counted at the emulator) per source change.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx
from confluent_kafka import Consumer, Producer, TopicPartition

from bench.peers import naive_faust_rate, raw_aiokafka_rate
from bench.workload import produce, project_events
from dualwrite.apiclient import ApiSession
from dualwrite.kafka import LocalKafka
from dualwrite.stack import Stack, StackConfig, free_port
from topics import Command, apply_topics, catalog, cdc_topic, commands_topic, encode

__all__ = ["PipelineBench", "run_pipeline_bench"]


@dataclass
class PipelineBench:
    replay_events: int
    raw_aiokafka_eps: float
    naive_faust_eps: float
    processor_eps: float
    burst_changes: int
    burst_records: int
    sink_requests: int
    sink_requests_per_change: float
    sink_seconds: float
    naive_sink_requests_per_change: float
    naive_sink_seconds: float

    def as_json(self) -> str:
        return json.dumps(asdict(self), indent=2)


def _commands_rate(bootstrap: str, expected: int, timeout: float) -> float:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"bench-{uuid.uuid4().hex}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe([commands_topic("finance")])
    first = last = None
    seen = 0
    deadline = time.monotonic() + timeout
    try:
        while seen < expected and time.monotonic() < deadline:
            for msg in consumer.consume(1000, 0.5):
                if msg.error():
                    continue
                ts = msg.timestamp()[1] / 1000.0
                first = ts if first is None else min(first, ts)
                last = ts if last is None else max(last, ts)
                seen += 1
    finally:
        consumer.close()
    if seen < expected or first is None or last is None:
        raise RuntimeError(f"processor produced {seen}/{expected} commands in {timeout:.0f}s")
    return seen / max(last - first, 1e-3)


def _replay(workdir: Path, kafka: LocalKafka, records: int, updates: int) -> tuple[int, float, float, float]:
    client = {"bootstrap.servers": kafka.bootstrap}
    produced = produce(client, project_events(records, updates))
    projects = produced - 1  # the first event is the legal entity
    topic = cdc_topic("dataverse", "msdyn_projects")
    raw = raw_aiokafka_rate(kafka.bootstrap, topic, projects)
    naive = naive_faust_rate(kafka.bootstrap, topic, projects, workdir / "naive")
    stack = Stack(StackConfig(workdir=workdir / "replay", kafka_bootstrap=kafka.bootstrap, seed=False))
    try:
        stack.start_pipeline(("worker",))
        rate = _commands_rate(kafka.bootstrap, projects, timeout=900)
    finally:
        stack.stop()
    return projects, raw, naive, rate


def _burst_commands(records: int, updates: int) -> list[Command]:
    out = []
    for version in range(1, updates + 1):
        for i in range(records):
            pid = f"BURST-{i:05d}"
            fields = {"ProjectName": f"Burst {i} rev {version}", "ProjectStage": "InProcess"}
            out.append(Command.model_validate({
                "command_id": f"projects:{pid}:{version}", "map": "projects", "target": "finance",
                "entity": "ProjectsV2", "key": {"dataAreaId": "usmf", "ProjectId": pid},
                "op": "upsert", "fields": fields, "fingerprint": f"{pid}-{version}",
                "source": {"system": "dataverse", "table": "msdyn_projects", "id": pid,
                           "version": version, "ts_ms": 0}}))
    return out


def _naive_sink(fo: ApiSession, commands: list[Command]) -> float:
    """One request per command, in order: what a per-event HTTP sink does."""
    started = time.perf_counter()
    for cmd in commands:
        url = "ProjectsV2(" + ",".join(f"{k}='{v}'" for k, v in cmd.key.items()) + ")"
        resp = fo.request("PATCH", url, json=cmd.fields)
        if resp.status_code == 404:
            resp = fo.request("POST", "ProjectsV2", json={**cmd.key, **cmd.fields})
        resp.raise_for_status()
    return time.perf_counter() - started


def _burst(workdir: Path, kafka: LocalKafka, records: int, updates: int) -> dict[str, float]:
    stack = Stack(StackConfig(workdir=workdir / "burst", kafka_bootstrap=kafka.bootstrap))
    try:
        stack.start_emulators()
        admin = httpx.Client(base_url=f"{stack.fo_url}/_admin", timeout=10)
        commands = _burst_commands(records, updates)
        naive_cmds = [c.model_copy(update={"key": {**c.key, "ProjectId": "N" + str(c.key["ProjectId"])}})
                      for c in commands]
        admin.delete("/requests")
        naive_seconds = _naive_sink(stack.finance(), naive_cmds)
        naive_requests = admin.get("/requests").json()["writes"]

        producer = Producer({"bootstrap.servers": kafka.bootstrap, "enable.idempotence": True})
        for cmd in commands:
            producer.produce(commands_topic("finance"), key=cmd.record_key.encode(), value=encode(cmd))
        producer.flush(60)
        admin.delete("/requests")
        started = time.perf_counter()
        stack.start_pipeline(("sink-finance",))
        _wait_applied(kafka.bootstrap, len(commands), timeout=600)
        seconds = time.perf_counter() - started
        requests = admin.get("/requests").json()["writes"]
    finally:
        stack.stop()
    changes = len(commands)
    return {"requests": requests, "per_change": requests / changes, "seconds": seconds,
            "naive_per_change": naive_requests / changes, "naive_seconds": naive_seconds}


def _wait_applied(bootstrap: str, commands: int, timeout: float) -> None:
    """Until the sink's group has committed every command (its effects are durable by then)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "dualwrite-sink-finance",
                         "enable.auto.commit": False})
    topic = commands_topic("finance")
    try:
        parts = [TopicPartition(topic, p) for p in consumer.list_topics(topic, timeout=10).topics[topic].partitions]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            done = sum(max(tp.offset, 0) for tp in consumer.committed(parts, timeout=10))
            if done >= commands:
                return
            time.sleep(0.5)
    finally:
        consumer.close()
    raise RuntimeError(f"the Finance sink did not commit {commands} commands within {timeout:.0f}s")


def run_pipeline_bench(workdir: Path, records: int = 2000, updates: int = 10,
                       burst_records: int = 200, burst_updates: int = 10) -> PipelineBench:
    kafka = LocalKafka(workdir / "kafka", port=free_port(), controller_port=free_port())
    kafka.up(timeout=120)
    try:
        apply_topics({"bootstrap.servers": kafka.bootstrap}, catalog(partitions=3))
        events, raw, naive, processor = _replay(workdir, kafka, records, updates)
        burst = _burst(workdir, kafka, burst_records, burst_updates)
    finally:
        kafka.down()
    return PipelineBench(
        replay_events=events, raw_aiokafka_eps=raw, naive_faust_eps=naive, processor_eps=processor,
        burst_changes=burst_records * burst_updates, burst_records=burst_records,
        sink_requests=int(burst["requests"]), sink_requests_per_change=burst["per_change"],
        sink_seconds=burst["seconds"], naive_sink_requests_per_change=burst["naive_per_change"],
        naive_sink_seconds=burst["naive_seconds"])

