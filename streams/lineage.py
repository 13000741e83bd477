"""Which engine committed a worker group's offsets, so the Faust agents never run on the batch
engine's state.

The batch engine remembers a park or a release in a parked slot by a mark that is a clock in
microseconds (`streams.engine`); the Faust agents mark by gate offset and take a release marked
above the record they handle for a later one (`streams.gate`): a change parked again in such a
slot would be skipped as if released already. The batch engine therefore commits its offsets
with `BATCH_METADATA` (the offset commit's metadata, kept by the group coordinator with the
offset), and the Faust agents refuse to start on a group whose gate offsets carry it. The mark
travels with the group, not with a local directory, so a worker on a fresh disk that would
restore the same state from the changelogs is refused too.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from confluent_kafka import Consumer, TopicPartition

__all__ = ["BATCH_METADATA", "marked", "written_by_batch"]

BATCH_METADATA = "dualwrite.engine=batch"


def marked(offsets: Iterable[TopicPartition]) -> list[TopicPartition]:
    """``offsets`` as the batch engine commits them: each with `BATCH_METADATA`."""
    return [TopicPartition(tp.topic, tp.partition, tp.offset, metadata=BATCH_METADATA) for tp in offsets]


def written_by_batch(client: dict[str, Any], group: str, topics: Iterable[str], timeout_s: float = 30.0) -> bool:
    """Whether ``group`` committed an offset of any partition of ``topics`` (those it reads)
    through the batch engine. Reads the committed offsets without joining the group."""
    consumer = Consumer({**client, "group.id": group, "enable.auto.commit": False})
    try:
        listed = consumer.list_topics(timeout=timeout_s).topics
        partitions = [TopicPartition(topic, p) for topic in topics if topic in listed
                      for p in sorted(listed[topic].partitions)]
        committed = consumer.committed(partitions, timeout=timeout_s) if partitions else []
    finally:
        consumer.close()
    return any(tp.metadata == BATCH_METADATA for tp in committed)
