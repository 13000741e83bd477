"""Initial sync rows per second into the CDC topic, next to the emulator's raw paging rate.

The ceiling is a bare httpx loop paging the same Finance table the same way (keyset on RecId,
``$top`` = the page size, ``cross-company=true``), measured in the same run before and after
the sync (the faster of the two counts): what the emulator can serve at all. The initial sync
(`dualwrite.initial_sync`, in process) adds events, Kafka acknowledgements and a durable
checkpoint per page; the goal is at least half of the ceiling. Own broker and Finance emulator
(throttling raised out of the way: the figure is the pipeline's, not the service protection's).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
from pydantic import SecretStr

from bench.figures import Figure
from connectors.common.batch import BatchOp, build_batch, parse_batch_response
from connectors.common.kafka import AsyncProducer, KafkaConfig, read_compacted
from connectors.common.source import CaptureTable, SourceSettings
from connectors.finance import FinanceConnection, finance_source
from dualwrite.initial_sync import InitialSync, MasterDecision, SyncTask
from dualwrite.kafka import LocalKafka
from dualwrite.ports import free_port
from dualwrite.stack import TENANT
from emulators.common.config import CLIENT_SECRET_ENV
from streams.maps import default_registry
from topics import TopicSpec, apply_topics, catalog

__all__ = ["DEFAULT_ROWS", "InitialSyncBench", "initial_sync_figures", "raw_paging", "run_initial_sync_bench"]

TABLE = "CustomersV3"
CLIENT_ID = "dualwrite-bench"
SECRET = "dualwrite-bench-secret"
GOAL = 0.5
# Fifty pages: the sync's start (checkpoints read, position captured) and end (hand-over) are
# a fixed cost that a table of a few pages would measure instead of the paging.
DEFAULT_ROWS = 50_000


@dataclass(frozen=True)
class InitialSyncBench:
    rows: int
    page_size: int
    sync_s: float
    raw_s: float

    @property
    def sync_rps(self) -> float:
        return self.rows / self.sync_s

    @property
    def raw_rps(self) -> float:
        return self.rows / self.raw_s


def initial_sync_figures(result: InitialSyncBench) -> list[Figure]:
    return [Figure("initial_sync", f"initial sync rows/s into the topics vs bare httpx paging "
                   f"({result.rows} rows, pages of {result.page_size})", result.sync_rps, "/s",
                   result.raw_rps, "same run", "%", f">= {GOAL:.0%}",
                   detail={"rows": result.rows, "sync_s": result.sync_s, "raw_s": result.raw_s})]


def raw_paging(api_url: str, token: str, page_size: int) -> tuple[int, float]:
    """Rows and seconds of one keyset paging pass over the table (the ceiling)."""
    rows, last = 0, 0
    started = time.monotonic()
    with httpx.Client(base_url=api_url, headers={"Authorization": f"Bearer {token}"}, timeout=60) as http:
        while True:
            params = {"cross-company": "true", "$orderby": "RecId", "$top": str(page_size),
                      "$filter": f"RecId gt {last}"}
            page = http.get(TABLE, params=params).raise_for_status().json()["value"]
            rows += len(page)
            if len(page) < page_size:
                return rows, time.monotonic() - started
            last = max(r["RecId"] for r in page)


def _emulator(workdir: Path, port: int) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "dualwrite", "emulator", "finance", "--port", str(port),
           "--db", str(workdir / "finance.db"), "--client-id", CLIENT_ID, "--seed",
           "--requests", str(10**9)]
    log = (workdir / "finance.log").open("ab")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                            env={**os.environ, CLIENT_SECRET_ENV: SECRET})
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/_admin/health", timeout=1).status_code == 200:
                return proc
        except httpx.TransportError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("the Finance emulator did not answer")


WARMUP_TOPIC = "bench.warmup"


def _warm_broker(bootstrap: str, rows: int, page_size: int) -> None:
    """What a broker does once in its life is done here, outside the measured sync: before its
    first idempotent producer gets an id (about 0.6 s: "coordinator load in progress"), its
    first reader finds a group coordinator (0.2 s), and its JVM compiles the produce path (the
    first three to five 1,000-record batches took 28-72 ms to acknowledge, then about 10 ms;
    measured on 2 cores), so as many records of an event's size as the sync produces go first.
    A fresh broker is this bench's setup, not what an initial sync meets."""
    config = KafkaConfig(bootstrap_servers=bootstrap)
    apply_topics({"bootstrap.servers": bootstrap},
                 [TopicSpec(WARMUP_TOPIC, 3, 1, "delete", None, None, None, "bench warm-up")])

    async def produce() -> None:
        producer = AsyncProducer(config)
        value = b"w" * 400  # about a CustomersV3 event
        try:
            for start in range(0, max(rows, 1), page_size):
                await producer.produce_all([(WARMUP_TOPIC, f"{n}".encode(), value, None)
                                            for n in range(start, min(start + page_size, max(rows, 1)))],
                                           flush=True)
        finally:
            producer.close()

    asyncio.run(produce())
    read_compacted(config, WARMUP_TOPIC)


def _fill(api_url: str, token: str, rows: int) -> None:
    """``rows`` customers, 500 to a ``$batch`` change set (one request each: filling is not
    what is measured)."""
    ops = [BatchOp("POST", f"{api_url}/{TABLE}", {"dataAreaId": "usmf", "CustomerAccount": f"B-{n:07d}",
                                                  "Name": f"Bench {n}", "CustomerGroupId": "10",
                                                  "SalesCurrencyCode": "USD"}) for n in range(rows)]
    with httpx.Client(headers={"Authorization": f"Bearer {token}"}, timeout=120) as http:
        for start in range(0, rows, 500):
            body, content_type = build_batch([ops[start:start + 500]])
            answer = http.post(f"{api_url}/$batch", content=body, headers={"Content-Type": content_type})
            answer.raise_for_status()
            failed = [r.status for group in parse_batch_response(answer.content, answer.headers["content-type"])
                      for r in group if r.status >= 300]
            if failed:
                raise RuntimeError(f"filling {TABLE}: {len(failed)} writes refused ({failed[0]})")


async def _sync(conn: FinanceConnection, bootstrap: str) -> tuple[int, float]:
    """Rows read and seconds of one initial sync of the table (from the checkpoint read to the
    hand-over; the engine's construction is not counted)."""
    settings = SourceSettings(system="finance", tables=(TABLE,),
                              declared=(CaptureTable(name=TABLE, company="dataAreaId"),))
    engine = finance_source(conn, KafkaConfig(bootstrap_servers=bootstrap), settings)
    try:
        sync = InitialSync(default_registry(), {"finance": engine}, lambda m: MasterDecision())
        started = time.monotonic()
        (summary,) = await sync.run([SyncTask("customers", "finance", TABLE)])
        return summary.state.read, time.monotonic() - started
    finally:
        await engine.close()


def run_initial_sync_bench(workdir: Path, rows: int = DEFAULT_ROWS, page_size: int = 1000) -> InitialSyncBench:
    """Own broker and emulator; ``rows`` customers added to the seeded ones."""
    workdir.mkdir(parents=True, exist_ok=True)
    kafka = LocalKafka(workdir / "kafka", port=free_port(), controller_port=free_port())
    kafka.up(timeout=120)
    port = free_port()
    emulator = _emulator(workdir, port)
    base = f"http://127.0.0.1:{port}"
    try:
        apply_topics({"bootstrap.servers": kafka.bootstrap},
                     catalog(partitions=3, cdc_tables=[("finance", TABLE)]))
        _warm_broker(kafka.bootstrap, rows, page_size)
        token = httpx.post(f"{base}/{TENANT}/oauth2/v2.0/token", data={
            "grant_type": "client_credentials", "client_id": CLIENT_ID, "client_secret": SECRET,
            "scope": f"{base}/.default"}).raise_for_status().json()["access_token"]
        _fill(f"{base}/data", token, rows)
        total, raw_before = raw_paging(f"{base}/data", token, page_size)
        conn = FinanceConnection(url=base, token_url=f"{base}/{TENANT}/oauth2/v2.0/token", client_id=CLIENT_ID,
                                 client_secret=SecretStr(SECRET), page_size=page_size)
        read, sync_s = asyncio.run(_sync(conn, kafka.bootstrap))
        _, raw_after = raw_paging(f"{base}/data", token, page_size)
        if read != total:
            raise RuntimeError(f"initial sync read {read} rows, the table holds {total}")
        return InitialSyncBench(total, page_size, sync_s, min(raw_before, raw_after))
    finally:
        emulator.terminate()
        emulator.wait(20)
        kafka.down()
