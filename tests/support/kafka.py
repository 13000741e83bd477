"""Small Kafka helpers shared by the test tiers."""

from __future__ import annotations

import time

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient


def wait_for_leaders(admin: AdminClient, names: list[str], timeout: float = 30.0) -> None:
    """Until every partition of `names` has a leader: a topic is usable only then (creation is
    acknowledged before the leaders are known, and reads in between fail NOT_LEADER)."""
    deadline = time.monotonic() + timeout
    while True:
        topics = admin.list_topics(timeout=10).topics
        ready = all(
            name in topics and not topics[name].error and topics[name].partitions
            and all(p.leader >= 0 and not p.error for p in topics[name].partitions.values())
            for name in names)
        if ready:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"topics without leaders after {timeout:.0f}s: {names}")
        time.sleep(0.1)


SETTLING = (KafkaError.NOT_LEADER_FOR_PARTITION, KafkaError.LEADER_NOT_AVAILABLE,
            KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._TIMED_OUT, KafkaError._TRANSPORT)


def end_offset(consumer: Consumer, tp: TopicPartition, timeout: float = 20.0) -> int:
    """The partition's end offset. Just after a topic is created its leader may still be
    settling on the broker (NOT_LEADER even once metadata names one): ask again until it is."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return int(consumer.get_watermark_offsets(tp, timeout=timeout)[1])
        except KafkaException as exc:
            if exc.args[0].code() not in SETTLING or time.monotonic() > deadline:
                raise
            time.sleep(0.2)
