"""The peers every figure is compared with, measured on the same broker in the same run.

- raw aiokafka consumption of the topic (the ceiling for any Python consumer);
- a naive Faust agent that decodes each event and updates a RocksDB table per event.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from aiokafka import AIOKafkaConsumer


async def _raw(bootstrap: str, topic: str, expected: int, timeout: float) -> float:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                                enable_auto_commit=False, group_id=None, max_poll_records=5000)
    await consumer.start()
    seen, first = 0, None
    deadline = time.monotonic() + timeout
    try:
        while seen < expected and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500, max_records=5000)
            for records in batch.values():
                if first is None and records:
                    first = time.perf_counter()
                seen += len(records)
    finally:
        await consumer.stop()
    if seen < expected or first is None:
        raise RuntimeError(f"raw consumer saw {seen}/{expected} records")
    return seen / max(time.perf_counter() - first, 1e-9)


def raw_aiokafka_rate(bootstrap: str, topic: str, expected: int, timeout: float = 300) -> float:
    """Events per second of a bare aiokafka consumer reading `topic` from the start."""
    return asyncio.run(_raw(bootstrap, topic, expected, timeout))


NAIVE_AGENT = '''
import json, os, time, faust
bootstrap, topic, out, data = (os.environ["BENCH_" + k] for k in ("BOOTSTRAP", "TOPIC", "OUT", "DATA"))
expected = int(os.environ["BENCH_EXPECTED"])
app = faust.App("bench-naive-" + str(time.time_ns()), broker="kafka://" + bootstrap,
                store="rocksdb://", datadir=data, web_enabled=False, topic_partitions=3)
source = app.topic(topic, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw")
versions = app.Table("versions", default=int, partitions=3)
state = {"n": 0, "first": None}

@app.agent(source)
async def naive(stream):
    async for key, value in stream.items():
        event = json.loads(value)
        if state["first"] is None:
            state["first"] = time.perf_counter()
        versions[key.decode()] = int(event["source"]["version"])
        state["n"] += 1
        if state["n"] == expected:
            with open(out, "w") as fh:
                json.dump({"rate": expected / (time.perf_counter() - state["first"])}, fh)
            os._exit(0)

app.main()
'''


def naive_faust_rate(bootstrap: str, topic: str, expected: int, workdir: Path,
                     timeout: float = 600) -> float:
    """Events per second of a naive per-event Faust agent (table write per event, RocksDB)."""
    workdir.mkdir(parents=True, exist_ok=True)
    script = workdir / "naive_agent.py"
    script.write_text(NAIVE_AGENT)
    out = workdir / "naive.json"
    with open(workdir / "naive.log", "wb") as log:
        env = {**os.environ, "BENCH_BOOTSTRAP": bootstrap, "BENCH_TOPIC": topic,
               "BENCH_EXPECTED": str(expected), "BENCH_OUT": str(out),
               "BENCH_DATA": str(workdir / "naive-data")}
        proc = subprocess.run([sys.executable, str(script), "worker", "--without-web", "-l", "warn"], env=env,
                              stdout=log, stderr=subprocess.STDOUT, timeout=timeout, check=False)
    if not out.exists():
        raise RuntimeError(f"naive Faust agent did not finish (exit {proc.returncode}); see {workdir / 'naive.log'}")
    return float(json.loads(out.read_text())["rate"])
