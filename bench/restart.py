"""P6: a worker restarted (SIGKILL) with 1,000,000 keys in its tables is processing again within
30 s, its state in RocksDB on local disk, next to the same restart when every key must be
replayed from the changelogs (measured in the same run, on a broker of its own).

1. Warm-up: one worker, the company and probe project 0; once probe 0's command is out, one
   record the worker itself wrote to each of the ``versions``, ``facts`` and ``targets``
   changelogs about probe 0 is the template of that table.
2. Fill: ``keys`` records, split evenly over the three changelogs and their partitions, each the
   template with the probe's id and number swapped for a synthetic one (`synthetic_key`): the
   worker's own record format, so its tables really hold these keys once recovered.
3. Peer, full changelog replay: SIGKILL and start; RocksDB's persisted offsets are from before
   the fill, so Faust reads every filled record back. Seconds from the restart to probe 1's
   command.
4. The figure: SIGKILL and start again; RocksDB now holds every key, only the tail since its
   persisted offsets is read. Seconds from the restart to probe 2's command. The worker's log
   must then say that its fact view was warmed with at least the filled facts: the state was
   really there after the restart, not an empty table read fast.

Seconds are the command's record timestamp (set by the worker's producer) minus the wall clock
before the restart call, so how often this side polls does not count.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from confluent_kafka import Consumer, KafkaException, Message, TopicPartition

from bench.figures import Figure, restarts_included
from bench.offsets import WORKER_APP_ID
from bench.pipeline import broker
from bench.workload import (
    company_event,
    probe_id,
    probe_number,
    probe_project,
    produce,
    produce_records,
)
from dualwrite.stack import Stack, StackConfig
from streams.maps import default_registry
from topics import commands_topic

__all__ = ["DEFAULT_KEYS", "FILLED_TABLES", "GOAL_S", "RestartBench", "changelog_topic", "restart_figure",
           "run_restart_bench", "split", "synthetic_key"]

DEFAULT_KEYS = 1_000_000
GOAL_S = 30.0
FILLED_TABLES = ("versions", "facts", "targets")  # the tables that grow with the records synced
WARMED = re.compile(rb"fact view warmed with (\d+) facts")


@dataclass(frozen=True)
class RestartBench:
    keys: int
    per_table: dict[str, int]
    restart_s: float  # the figure: RocksDB holds every key
    replay_s: float  # the peer: every filled key read back from the changelogs
    warmed_facts: int  # what the worker's fact view held after the measured restart
    # The supervisor's restarts of the worker within each measurement (its watchdog exits 75
    # when the worker makes no progress with records waiting): included in the seconds.
    restarts: int = 0
    replay_restarts: int = 0


def restart_figure(result: RestartBench) -> Figure:
    """The restart with every key in RocksDB, as a share of the restart that replays them."""
    replay = "full changelog replay" + restarts_included(result.replay_restarts, suffix=", {}")
    return Figure("p6", f"P6 worker restart (SIGKILL) with {result.keys:,} keys in RocksDB, seconds to "
                  f"processing{restarts_included(result.restarts)}", result.restart_s, "s",
                  result.replay_s, replay, "%", f"<= {GOAL_S:g} s",
                  detail={"keys": result.keys, **{f"{t}_keys": n for t, n in result.per_table.items()},
                          "replay_s": result.replay_s, "worker_restarts": result.restarts,
                          "replay_worker_restarts": result.replay_restarts,
                          "warmed_facts": result.warmed_facts})


def changelog_topic(table: str) -> str:
    return f"{WORKER_APP_ID}-{table}-changelog"


def split(keys: int, tables: tuple[str, ...] = FILLED_TABLES) -> dict[str, int]:
    """``keys`` over ``tables`` as evenly as whole numbers go (the first ones take the rest)."""
    share, rest = divmod(keys, len(tables))
    return {table: share + (i < rest) for i, table in enumerate(tables)}


def synthetic_key(template: bytes, n: int, probe: int = 0) -> bytes:
    """The template's key with probe ``probe``'s record id and project number swapped for those of
    synthetic project ``n`` (same shape, never an id or number of `bench.workload`)."""
    key = (template.replace(probe_id(probe).encode(), str(uuid.UUID(int=(1 << 127) | n)).encode())
           .replace(probe_number(probe).encode(), f"FILL-{n:07d}".encode()))
    if key == template:
        raise ValueError(f"key {template!r} names neither the probe's id nor its number")
    return key


def _read(bootstrap: str, topic: str) -> Iterator[Message]:
    """Every record of ``topic`` up to its end offsets now, without joining a group."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"bench-{uuid.uuid4().hex}",
                         "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in partitions}
        left = {p for p, end in ends.items() if end > 0}
        consumer.assign([TopicPartition(topic, p, 0) for p in left])
        while left:
            for msg in consumer.consume(1000, 1.0):
                if msg.error():
                    continue
                yield msg
                if (msg.offset() or 0) + 1 >= ends[msg.partition()]:
                    left.discard(msg.partition())
            # A transactional producer's last offset is its commit marker, never a record: done
            # once the position has passed the end.
            for tp in consumer.position([TopicPartition(topic, p) for p in left]):
                if tp.offset >= ends[tp.partition]:
                    left.discard(tp.partition)
    finally:
        consumer.close()


def _command_time(bootstrap: str, probe: int, timeout: float) -> float:
    """Wall-clock time (record timestamp) of probe ``probe``'s command on the Finance commands."""
    needle = probe_number(probe).encode()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            for msg in _read(bootstrap, commands_topic("finance")):
                if needle in (msg.value() or b""):
                    return float(msg.timestamp()[1]) / 1000.0
        except KafkaException:  # a fresh broker's partition without a leader yet: ask again
            pass
        time.sleep(0.2)
    raise RuntimeError(f"no command for probe {probe} within {timeout:.0f}s")


def _template(bootstrap: str, table: str, timeout: float = 60.0) -> tuple[bytes, bytes]:
    """A (key, value) the worker wrote to ``table``'s changelog about probe 0, its latest value
    (the writes may land just after the command); of several keys, the first in byte order, so
    every run fills with the same one (``facts`` holds the project's key fact and its presence)."""
    needles = (probe_id(0).encode(), probe_number(0).encode())
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        latest = {msg.key(): msg.value() for msg in _read(bootstrap, changelog_topic(table))
                  if any(n in (msg.key() or b"") for n in needles)}
        found = sorted((key, value) for key, value in latest.items() if key is not None and value is not None)
        if found:
            return found[0]
        time.sleep(0.5)
    raise RuntimeError(f"the worker wrote nothing about probe 0 to {changelog_topic(table)}")


def _fill(bootstrap: str, templates: dict[str, tuple[bytes, bytes]], per_table: dict[str, int]) -> None:
    """Each table's count of synthetic copies of its template, round robin over its partitions."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"bench-{uuid.uuid4().hex}"})
    try:
        partitions = {t: len(consumer.list_topics(changelog_topic(t), timeout=10).topics[changelog_topic(t)]
                             .partitions) for t in per_table}
    finally:
        consumer.close()
    produce_records({"bootstrap.servers": bootstrap, "compression.type": "lz4"},
                    ((changelog_topic(t), synthetic_key(templates[t][0], n), templates[t][1], n % partitions[t])
                     for t, count in per_table.items() for n in range(count)))


def _restart_until_processed(stack: Stack, bootstrap: str, probe: int, timeout: float) -> tuple[float, int]:
    """Seconds from SIGKILL-and-start of the worker to probe ``probe``'s command (produced right
    after the start), and how often the supervisor restarted the worker meanwhile."""
    worker = stack.sup.children["worker"]
    starts = worker.starts
    started = time.time()
    stack.sup.restart("worker")
    produce({"bootstrap.servers": bootstrap}, [probe_project(probe)])
    return _command_time(bootstrap, probe, timeout) - started, worker.starts - starts - 1


def _warmed_facts(log: Path, since: int, timeout: float = 60.0) -> int:
    """The most facts the worker's log says its view was warmed with, after byte ``since``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with log.open("rb") as fh:
            fh.seek(since)
            counts = [int(n) for n in WARMED.findall(fh.read())]
        if counts:
            return max(counts)
        time.sleep(0.5)
    raise RuntimeError(f"{log} says nothing about warming the fact view after the restart")


def run_restart_bench(workdir: Path, keys: int = DEFAULT_KEYS) -> RestartBench:
    """Own broker and one worker (sinks off); ``keys`` filled keys."""
    timeout = 300.0 + keys / 1000  # a full replay on 2 cores, with room
    with broker(workdir, default_registry().cdc_tables()) as kafka:
        stack = Stack(StackConfig(workdir=workdir / "stack", kafka_bootstrap=kafka.bootstrap, seed=False))
        try:
            stack.start_pipeline(("worker",))
            produce({"bootstrap.servers": kafka.bootstrap}, [company_event(), probe_project(0)])
            _command_time(kafka.bootstrap, 0, timeout=300)
            templates = {t: _template(kafka.bootstrap, t) for t in FILLED_TABLES}
            per_table = split(keys)
            _fill(kafka.bootstrap, templates, per_table)
            replay_s, replay_restarts = _restart_until_processed(stack, kafka.bootstrap, 1, timeout)
            log = stack.sup.children["worker"].log_path
            since = log.stat().st_size
            restart_s, restarts = _restart_until_processed(stack, kafka.bootstrap, 2, timeout)
            warmed = _warmed_facts(log, since)
        finally:
            stack.stop()
    if warmed < per_table["facts"]:
        raise RuntimeError(f"after the restart the worker's fact view held {warmed} facts, fewer than the "
                           f"{per_table['facts']} filled: its tables did not hold the state")
    return RestartBench(keys, per_table, restart_s, replay_s, warmed, restarts, replay_restarts)
