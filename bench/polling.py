"""Idle source requests per second per target, next to that target's service-protection budget.

Every source poll is a request charged to the source's user. Idle (nothing changes), the cost
is set by how many tables are polled (only those the maps read, `dualwrite.capture`) and how
far each idle table backs off (`connectors.common.pacing`). The figure is counted at the
emulators (``/_admin/requests``) over a window after the snapshots and the back-off ramp, with
only the emulators and the two sources running, so every request counted is a source's.

Budgets: Dataverse allows 6,000 requests per 5-minute sliding window per user (20 req/s,
service protection API limits). Finance's current protection is resource-based (priority-based
throttling) with no fixed per-user request count; its retired user-based limit used the same
6,000 per 5 minutes, which the emulator enforces per client by default, so that figure is used
for both. Goal: idle polling at most 10% of one user's budget.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import httpx
from confluent_kafka import Consumer, TopicPartition

from dualwrite.kafka import LocalKafka
from dualwrite.ports import free_port
from dualwrite.stack import Stack, StackConfig
from streams.maps import default_registry
from topics import apply_topics, catalog

__all__ = ["BUDGET_RPS", "GOAL_SHARE", "IdleFigure", "measure_idle", "run_idle_bench", "wait_for_snapshots"]

BUDGET_RPS = {"dataverse": 6000 / 300, "finance": 6000 / 300}
GOAL_SHARE = 0.10
OFFSETS_TOPIC = "sync.source-offsets"
SOURCES = ("source-dataverse", "source-finance")


@dataclass(frozen=True)
class IdleFigure:
    target: str
    requests: int
    window_s: float

    @property
    def rps(self) -> float:
        return self.requests / self.window_s

    @property
    def budget_rps(self) -> float:
        return BUDGET_RPS[self.target]

    @property
    def share(self) -> float:
        return self.rps / self.budget_rps

    def row(self) -> tuple[str, str, str, str, str]:
        """figure, dualwrite, peer (the budget), ratio, goal: one line of the bench table."""
        return (f"idle source requests/s, {self.target}", f"{self.rps:.3f}", f"{self.budget_rps:.0f}",
                f"{self.share:.2%}", f"<= {GOAL_SHARE:.0%}")


def wait_for_snapshots(bootstrap: str, tables: int, timeout: float = 120.0) -> None:
    """Until ``sync.source-offsets`` holds a checkpoint for ``tables`` tables (snapshots done)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"bench-idle-{time.time_ns()}",
                         "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    keys: set[bytes] = set()
    try:
        consumer.assign([TopicPartition(OFFSETS_TOPIC, 0, 0)])
        deadline = time.monotonic() + timeout
        while len(keys) < tables:
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {len(keys)} of {tables} tables checkpointed in {timeout:.0f}s")
            msg = consumer.poll(0.5)
            if msg is not None and not msg.error() and msg.key():
                keys.add(bytes(msg.key()))  # type: ignore[arg-type]
    finally:
        consumer.close()


def measure_idle(stack: Stack, window_s: float) -> list[IdleFigure]:
    """Requests each emulator answered during ``window_s`` seconds from now."""
    admins = {target: httpx.Client(base_url=f"{url}/_admin", timeout=10)
              for target, url in (("dataverse", stack.dv_url), ("finance", stack.fo_url))}
    try:
        for client in admins.values():
            client.delete("/requests")
        time.sleep(window_s)
        return [IdleFigure(target, int(client.get("/requests").json()["total"]), window_s)
                for target, client in admins.items()]
    finally:
        for client in admins.values():
            client.close()


def run_idle_bench(workdir: Path, settle_s: float = 45.0, window_s: float = 60.0) -> list[IdleFigure]:
    """Own broker, both emulators (seeded) and both sources with default settings: the figure
    after the snapshots and ``settle_s`` of back-off."""
    kafka = LocalKafka(workdir / "kafka", port=free_port(), controller_port=free_port())
    kafka.up(timeout=120)
    stack = Stack(StackConfig(workdir=workdir, kafka_bootstrap=kafka.bootstrap))
    try:
        registry = default_registry()
        apply_topics({"bootstrap.servers": kafka.bootstrap},
                     catalog(partitions=3, cdc_tables=registry.cdc_tables()))
        stack.start_emulators()
        stack.start_pipeline(SOURCES)
        wait_for_snapshots(kafka.bootstrap, len(registry.cdc_tables()))
        time.sleep(settle_s)
        return measure_idle(stack, window_s)
    finally:
        stack.stop()
        kafka.down()
