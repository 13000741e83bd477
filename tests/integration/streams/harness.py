"""A worker process, isolated topics and small produce/consume helpers for streams tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from streams import default_registry
from streams.watchdog import EXIT_STALLED
from tests.support.kafka import wait_for_leaders
from topics import (
    ChangeEvent,
    TransactionBlock,
    catalog,
    cdc_topic,
    decode_command,
    encode,
    encode_key,
)
from topics.envelope import Source

PARTITIONS = 3
REPO = Path(__file__).resolve().parents[3]


def create_topics(bootstrap: str, prefix: str, sizes: dict[str, int] | None = None) -> None:
    """The catalog's topics under ``prefix``; ``sizes``: partitions of some of them, by name,
    instead of the catalog's."""
    wanted = {cdc_topic(s, t) for s, t in default_registry().cdc_tables()}  # type: ignore[arg-type]
    wanted |= {"sync.commands.finance", "sync.commands.dataverse", "sync.applied.finance",
               "sync.applied.dataverse", "sync.dlq", "sync.control"}
    specs = [s for s in catalog(partitions=PARTITIONS, cdc_tables=default_registry().cdc_tables())
             if s.name in wanted]
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics([NewTopic(prefix + s.name, (sizes or {}).get(s.name, s.partitions), 1,
                                            config=s.configs())
                                   for s in specs])
    for f in futures.values():
        f.result(30)
    wait_for_leaders(admin, [prefix + s.name for s in specs])


class WorkerProcess:
    """``python -m dualwrite.commands.worker`` as a real process."""

    def __init__(self, bootstrap: str, app_id: str, prefix: str, data_dir: Path, log: Path) -> None:
        self.args = [sys.executable, "-m", "dualwrite.commands.worker", "--app-id", app_id,
                     "--data-dir", str(data_dir), "--topic-prefix", prefix, "--log-level", os.environ.get("STREAMS_TEST_LOGLEVEL", "warning"),
                     "--session-timeout", os.environ.get("STREAMS_TEST_SESSION_TIMEOUT", "10"),
                     "--stall-timeout", "12"]
        self.env = {**os.environ, "DUALWRITE_KAFKA__BOOTSTRAP_SERVERS": bootstrap,
                    "DUALWRITE_TOPICS__PARTITIONS": str(PARTITIONS)}
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None
        self.restarts = 0

    def start(self) -> None:
        out = self.log.open("ab")
        self.proc = subprocess.Popen(self.args, env=self.env, cwd=REPO, stdout=out,
                                     stderr=subprocess.STDOUT)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()

    def check(self) -> None:
        """Restart a worker that exited as stalled (as its supervisor would); fail fast
        (with the worker's log) when it died otherwise."""
        if self.proc is not None and self.proc.poll() == EXIT_STALLED:
            self.restarts += 1
            self.start()
            return
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"worker exited with {self.proc.returncode}:\n{self.tail()}")

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-4000:] if self.log.exists() else ""


class Cdc:
    """Produces Debezium-style change events the way the source connectors do."""

    def __init__(self, bootstrap: str, prefix: str) -> None:
        self.producer = Producer({"bootstrap.servers": bootstrap})
        self.prefix = prefix

    def change(self, system: str, table: str, record_id: str, row: dict[str, Any] | None,
               version: int, op: str = "u", txid: str | None = None, tx_total: int | None = None,
               before: dict[str, Any] | None = None, ts_ms: int | None = None,
               tx_order: int = 1, flush: bool = True) -> None:
        ts = ts_ms if ts_ms is not None else int(time.time() * 1000)
        tx = TransactionBlock(id=txid, total_order=tx_order, data_collection_order=1,
                              event_count=tx_total) if txid and tx_total else None
        event = ChangeEvent(before=before, after=row, op=op, ts_ms=ts,  # type: ignore[arg-type]
                            source=Source(system=system, table=table, version=str(version),  # type: ignore[arg-type]
                                          ts_ms=ts, txid=txid), transaction=tx)
        self.raw(cdc_topic(system, table), encode_key(record_id), encode(event), flush=flush)  # type: ignore[arg-type]

    def raw(self, topic: str, key: bytes | None, value: bytes | None,
            headers: list[tuple[str, bytes]] | None = None, partition: int | None = None,
            flush: bool = True) -> None:
        placed = {} if partition is None else {"partition": partition}
        self.producer.produce(self.prefix + topic, key=key, value=value, headers=headers, **placed)
        if flush:
            self.producer.flush(10)
        else:
            self.producer.poll(0)


class Reader:
    """Reads a topic from the beginning, accumulating every record."""

    def __init__(self, bootstrap: str, topic: str, group: str) -> None:
        self.consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
        self.consumer.subscribe([topic])
        self.records: list[Any] = []

    def poll_until(self, done: Callable[[list[Any]], bool], timeout: float = 60.0,
                   worker: WorkerProcess | None = None) -> list[Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not done(self.records):
            if worker is not None:
                worker.check()
            msg = self.consumer.poll(0.5)
            if msg is not None and not msg.error():
                self.records.append(msg)
        return self.records

    def drain(self, seconds: float) -> list[Any]:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            msg = self.consumer.poll(0.3)
            if msg is not None and not msg.error():
                self.records.append(msg)
        return self.records

    def commands(self) -> list[Any]:
        return [decode_command(m.value()) for m in self.records]

    def close(self) -> None:
        self.consumer.close()
