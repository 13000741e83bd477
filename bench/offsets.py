"""Kafka records produced per change, counted from topic end offsets before and after a run.

End offsets count every record appended, whoever produced it and whether or not anyone read it
yet, so they measure the worker's hops (its gate topic, its tables' changelogs, its commands)
and the whole round trip (CDC, gate, changelogs, commands, acks, echoes, checkpoints) without
touching any process. Kafka's own topics (``__consumer_offsets``...) are left out: a commit is
not a message of the pipeline.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping

from confluent_kafka import Consumer, TopicPartition

__all__ = ["WORKER_APP_ID", "end_offsets", "produced", "settled_end_offsets", "worker_topic"]

WORKER_APP_ID = "dualwrite-streams"


def end_offsets(bootstrap: str) -> dict[str, int]:
    """Sum of the high watermarks of each topic's partitions, per topic."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"bench-offsets-{uuid.uuid4().hex}",
                         "enable.auto.commit": False})
    try:
        out: dict[str, int] = {}
        for name, meta in consumer.list_topics(timeout=10).topics.items():
            if name.startswith("__"):
                continue
            out[name] = sum(consumer.get_watermark_offsets(TopicPartition(name, p), timeout=10)[1]
                            for p in meta.partitions)
        return out
    finally:
        consumer.close()


def _ticking(name: str) -> bool:
    # The worker appends a timer record to its gate topic about twice a second even when idle;
    # those count (they are messages) but must not keep a run from settling.
    return name == f"{WORKER_APP_ID}-gate"


def settled_end_offsets(bootstrap: str, quiet_s: float = 2.0, timeout: float = 60.0) -> dict[str, int]:
    """End offsets once nothing but the worker's timer was appended for ``quiet_s`` (the trailing
    changelog writes and echoes of a run are in), or as they are after ``timeout``."""
    def quiet(a: Mapping[str, int], b: Mapping[str, int]) -> bool:
        return all(a.get(name) == count for name, count in b.items() if not _ticking(name))

    last = end_offsets(bootstrap)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(quiet_s)
        now = end_offsets(bootstrap)
        if quiet(last, now):
            return now
        last = now
    return last


def worker_topic(name: str) -> bool:
    """What the worker produces: its gate topic and table changelogs, the commands and the DLQ."""
    return name.startswith(f"{WORKER_APP_ID}-") or name.startswith("sync.commands.") or name == "sync.dlq"


def produced(before: Mapping[str, int], after: Mapping[str, int],
             select: Callable[[str], bool] = lambda _name: True) -> int:
    """Records appended between two `end_offsets` readings to the topics ``select`` keeps."""
    return sum(after[name] - before.get(name, 0) for name in after if select(name))
