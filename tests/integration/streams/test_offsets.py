"""The watchdog's committed offsets, asked of the group coordinator rather than read from a
private attribute of Faust's consumer."""

from __future__ import annotations

import asyncio
import time

import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from dualwrite.ports import free_port
from streams.offsets import CommittedOffsets

pytestmark = pytest.mark.integration


def _commit(bootstrap: str, group: str, topic: str, offsets: dict[int, int]) -> None:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        consumer.commit(offsets=[TopicPartition(topic, p, o) for p, o in offsets.items()], asynchronous=False)
    finally:
        consumer.close()


def test_the_groups_commits_per_partition_and_none_where_it_never_committed(kafka_bootstrap: str,
                                                                            unique: str) -> None:
    topic, group = f"offsets-{unique}", f"offsets-group-{unique}"
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    for future in admin.create_topics([NewTopic(topic, 3, 1)]).values():
        future.result(30)
    reader = CommittedOffsets(group, [kafka_bootstrap], {})
    try:
        assert reader.fetch([(topic, 0), (topic, 1)]) == {(topic, 0): None, (topic, 1): None}
        _commit(kafka_bootstrap, group, topic, {0: 3, 2: 0})
        assert reader.fetch([(topic, 0), (topic, 1), (topic, 2)]) == {(topic, 0): 3, (topic, 1): None, (topic, 2): 0}
        _commit(kafka_bootstrap, group, topic, {0: 7})
        assert asyncio.run(reader.fetch_async([(topic, 0)])) == {(topic, 0): 7}  # the same client, asked again
        assert reader.fetch([]) == {}
    finally:
        reader.close()


def test_a_broker_that_does_not_answer_is_none_within_the_timeout() -> None:
    """The watchdog then skips its check; it never exits on what it could not read."""
    reader = CommittedOffsets("nobody", [f"127.0.0.1:{free_port()}"], {}, timeout_s=1.0)
    try:
        started = time.monotonic()
        assert reader.fetch([("t", 0)]) is None
        assert time.monotonic() - started < 5
    finally:
        reader.close()
