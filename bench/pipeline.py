"""`dualwrite bench pipeline`: processor replay throughput and sink requests per change, each next
to a peer measured in the same run on the same broker.

1. Replay: a CDC topic of project changes is pre-filled; the processor (`dualwrite worker`, sinks
   off) turns it into commands. Its rate (first to last command) is compared with raw aiokafka
   consumption of the same topic and a naive per-event Faust agent that writes a table per event;
   the records it appends per change (gate, changelogs, commands) come from end offsets (P1).
   The same with actuals of six lookups each (`bench.registry`, own broker) gives P1b. The same
   workload decided in this process, without Kafka and Faust (`bench.decisions`), is the
   ceiling of one worker process. The worker runs its hot path compiled when `dualwrite
   compile` built it (`streams.native`); the same replay interpreted, on a broker of its own,
   says what that gives.
2. Burst: every record is updated ten times within one flush window; the Finance sink writes the
   burst to the Finance emulator, next to a naive sink that sends one request per command. The
   figure is requests (counted at the emulator) per source change.
"""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx
from confluent_kafka import Consumer, Producer, TopicPartition

from bench.decisions import decisions_rate
from bench.offsets import WORKER_APP_ID, end_offsets, produced, settled_end_offsets, worker_topic
from bench.peers import naive_faust_rate, raw_aiokafka_rate
from bench.registry import ACTUALS_REGISTRY, ACTUALS_TABLE, REGISTRY_SPEC
from bench.workload import actuals_events, produce, project_events
from dualwrite.apiclient import ApiSession
from dualwrite.kafka import LocalKafka
from dualwrite.ports import free_port
from dualwrite.stack import Stack, StackConfig
from streams import native
from streams.maps import default_registry
from topics import Command, apply_topics, catalog, cdc_topic, commands_topic, encode

__all__ = ["PipelineBench", "Replay", "broker", "run_actuals_replay", "run_faust_replay", "run_interpreted_replay",
           "run_pipeline_bench"]


@dataclass
class PipelineBench:
    replay_events: int
    raw_aiokafka_eps: float
    naive_faust_eps: float
    processor_eps: float
    worker_produced_per_change: float
    burst_changes: int
    burst_records: int
    sink_requests: int
    sink_requests_per_change: float
    sink_seconds: float
    naive_sink_requests_per_change: float
    naive_sink_seconds: float
    replay_commands: int = 0
    replay_restarts: int = 0
    decisions_eps: float = 0.0  # the same workload decided in-process (`bench.decisions`)
    faust_agents_eps: float = 0.0  # the same replay by the Faust agents (`--engine faust`)
    faust_agents_produced_per_change: float = 0.0
    interpreted_eps: float = 0.0  # the same replay with the hot path interpreted (`streams.native`)
    hot_path: str = ""  # how the worker ran it: `streams.native.status`

    def as_json(self) -> str:
        return json.dumps(asdict(self), indent=2)


def _consumed(bootstrap: str, group: str, topic: str) -> bool:
    """Whether ``group`` has committed every record of ``topic`` (its effects are durable)."""
    probe = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        parts = [TopicPartition(topic, p) for p in probe.list_topics(topic, timeout=10).topics[topic].partitions]
        ends = sum(probe.get_watermark_offsets(tp, timeout=10)[1] for tp in parts)
        return sum(max(tp.offset, 0) for tp in probe.committed(parts, timeout=10)) >= ends
    finally:
        probe.close()


def _command_span(bootstrap: str, source_topic: str, timeout: float) -> tuple[float, int]:
    """Seconds from the first to the last command, and how many commands, once the worker
    committed all of ``source_topic`` and no command came for two seconds after. Completion is
    the worker's committed input, not a count of commands: a version the worker drops as stale
    (an older one released after a newer one, as when it waited for a fact while the newer did
    not) makes none, and a worker that stalls and restarts is waited for, not cut short."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"bench-{uuid.uuid4().hex}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe([commands_topic("finance")])
    first = last = None
    seen = 0
    deadline = time.monotonic() + timeout
    checked, done_at = 0.0, None
    try:
        while time.monotonic() < deadline:
            batch = [m for m in consumer.consume(1000, 0.5) if not m.error()]
            for msg in batch:
                ts = msg.timestamp()[1] / 1000.0
                first = ts if first is None else min(first, ts)
                last = ts if last is None else max(last, ts)
            seen += len(batch)
            if batch:
                done_at = None
            if done_at is None and time.monotonic() - checked > 1.0:
                checked = time.monotonic()
                if _consumed(bootstrap, WORKER_APP_ID, source_topic):
                    done_at = checked
            if done_at is not None and time.monotonic() - done_at > 2.0:
                break
        else:
            raise RuntimeError(f"the worker did not consume {source_topic} within {timeout:.0f}s "
                               f"({seen} commands)")
    finally:
        consumer.close()
    if first is None or last is None:
        raise RuntimeError(f"the worker consumed {source_topic} but produced no command")
    return max(last - first, 1e-3), seen


@dataclass(frozen=True)
class Replay:
    """One replay of a pre-filled CDC topic by the worker (sinks off)."""

    events: int
    eps: float  # source events per second, first to last command
    worker_records: int  # appended to the worker's gate, changelogs, commands and DLQ
    commands: int = 0  # fewer than events when stale versions make none, more after restarts
    restarts: int = 0  # the worker's (the supervisor restarts it after exit 75)

    @property
    def produced_per_change(self) -> float:
        return self.worker_records / self.events


def _replay_worker(workdir: Path, kafka: LocalKafka, topic: str, events: int, maps_spec: str = "",
                   engine: str = "batch", compiled: bool = True) -> Replay:
    """Start one worker (its ``engine``; ``compiled``: its hot path as `dualwrite compile` left
    it, else interpreted) over the pre-filled topics: its events per second from the first to
    the last command, and what it appended, from end offsets (settled, so trailing changelog
    writes count)."""
    before = end_offsets(kafka.bootstrap)
    env = {"DUALWRITE_PROCESSOR__ENGINE": engine}
    if not compiled:
        env[native.OFF_ENV] = "0"
    if maps_spec:
        env["DUALWRITE_PROCESSOR__MAPS"] = maps_spec
    stack = Stack(StackConfig(workdir=workdir, kafka_bootstrap=kafka.bootstrap, seed=False), env)
    try:
        stack.start_pipeline(("worker",))
        span, commands = _command_span(kafka.bootstrap, topic, timeout=900)
        after = settled_end_offsets(kafka.bootstrap)
        restarts = stack.sup.children["worker"].starts - 1
    finally:
        stack.stop()
    return Replay(events, events / span, produced(before, after, worker_topic), commands, restarts)


def _replay(workdir: Path, kafka: LocalKafka, records: int, updates: int) -> tuple[Replay, float, float]:
    """P1: the project workload, with raw aiokafka and the naive Faust agent on the same topic."""
    client = {"bootstrap.servers": kafka.bootstrap}
    produced_events = produce(client, project_events(records, updates))
    projects = produced_events - 1  # the first event is the legal entity
    topic = cdc_topic("dataverse", "msdyn_projects")
    raw = raw_aiokafka_rate(kafka.bootstrap, topic, projects)
    naive = naive_faust_rate(kafka.bootstrap, topic, projects, workdir / "naive")
    return _replay_worker(workdir / "replay", kafka, topic, projects), raw, naive


def run_faust_replay(workdir: Path, records: int, updates: int) -> Replay:
    """P1 by the Faust agents (``--engine faust``) on a broker of its own: the engine's peer."""
    with broker(workdir, default_registry().cdc_tables()) as kafka:
        produce({"bootstrap.servers": kafka.bootstrap}, project_events(records, updates))
        return _replay_worker(workdir / "replay", kafka, cdc_topic("dataverse", "msdyn_projects"),
                              records * updates, engine="faust")


def run_interpreted_replay(workdir: Path, records: int, updates: int) -> Replay:
    """P1 with the hot path interpreted (``DUALWRITE_NATIVE=0``) on a broker of its own: what
    compiling it (`streams.native`) gives."""
    with broker(workdir, default_registry().cdc_tables()) as kafka:
        produce({"bootstrap.servers": kafka.bootstrap}, project_events(records, updates))
        return _replay_worker(workdir / "replay", kafka, cdc_topic("dataverse", "msdyn_projects"),
                              records * updates, compiled=False)


def run_actuals_replay(workdir: Path, records: int, updates: int) -> Replay:
    """P1b on its own broker (the worker's group and internal topics start empty): actuals with
    six lookups each, the lookup rows pre-filled, run with the bench registry."""
    with broker(workdir, ACTUALS_REGISTRY.cdc_tables()) as kafka:
        produce({"bootstrap.servers": kafka.bootstrap}, actuals_events(records, updates))
        return _replay_worker(workdir / "replay", kafka, cdc_topic("dataverse", ACTUALS_TABLE),
                              records * updates, REGISTRY_SPEC)


@contextlib.contextmanager
def broker(workdir: Path, cdc_tables: list[tuple[str, str]]) -> Iterator[LocalKafka]:
    """A broker of its own under ``workdir`` with the catalog for these CDC tables."""
    kafka = LocalKafka(workdir / "kafka", port=free_port(), controller_port=free_port())
    kafka.up(timeout=120)
    try:
        apply_topics({"bootstrap.servers": kafka.bootstrap}, catalog(partitions=3, cdc_tables=cdc_tables))
        yield kafka
    finally:
        kafka.down()


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
    with broker(workdir, default_registry().cdc_tables()) as kafka:
        replay, raw, naive = _replay(workdir, kafka, records, updates)
        burst = _burst(workdir, kafka, burst_records, burst_updates)
    faust = run_faust_replay(workdir / "faust", records, updates)
    interpreted = run_interpreted_replay(workdir / "interpreted", records, updates)
    decided = decisions_rate(records, updates)
    return PipelineBench(
        replay_events=replay.events, raw_aiokafka_eps=raw, naive_faust_eps=naive,
        processor_eps=replay.eps, worker_produced_per_change=replay.produced_per_change,
        burst_changes=burst_records * burst_updates, burst_records=burst_records,
        sink_requests=int(burst["requests"]), sink_requests_per_change=burst["per_change"],
        sink_seconds=burst["seconds"], naive_sink_requests_per_change=burst["naive_per_change"],
        naive_sink_seconds=burst["naive_seconds"], replay_commands=replay.commands,
        replay_restarts=replay.restarts, decisions_eps=decided.changes_per_s,
        faust_agents_eps=faust.eps, faust_agents_produced_per_change=faust.produced_per_change,
        interpreted_eps=interpreted.eps, hot_path=native.status())
