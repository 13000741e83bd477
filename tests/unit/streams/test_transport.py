"""The worker's consumer: built with the configured fetch wait, not Faust's fixed 1,500 ms, and
seeking back the partitions aiokafka's seek_to_committed leaves alone.

The consumer is only constructed here (aiokafka builds its fetcher from the attribute when it
starts); no broker is contacted.
"""

from __future__ import annotations

from typing import Any, cast

import pytest
from faust.types import TP

from streams.app import create_app
from streams.config import StreamsConfig
from streams.transport import Transport, rewinds

pytestmark = pytest.mark.unit


async def test_the_worker_consumer_waits_as_configured_not_as_faust_fixes_it() -> None:
    app = create_app(StreamsConfig(store="memory://", fetch_max_wait_ms=77))
    assert isinstance(app.transport, Transport)
    thread = cast(Any, app.consumer)._thread
    consumer = thread._create_worker_consumer(app.transport)
    try:
        assert consumer._fetch_max_wait_ms == 77
        assert consumer._group_instance_id == app.conf.consumer_group_instance_id  # Faust's own kwargs kept
    finally:
        await consumer.stop()


async def test_the_default_wait_is_short() -> None:
    app = create_app(StreamsConfig(store="memory://"))
    consumer = cast(Any, app.consumer)._thread._create_worker_consumer(app.transport)
    try:
        assert consumer._fetch_max_wait_ms == 100
    finally:
        await consumer.stop()


CDC = TP("dataverse.cdc.msdyn_projects", 1)
GATE = TP("dualwrite-streams-gate", 0)
DONE = TP("dataverse.cdc.msdyn_projects", 2)
CHANGELOG = TP("dualwrite-streams-facts-changelog", 0)


def test_partitions_left_where_they_were_by_aiokafka_are_rewound_but_not_changelogs() -> None:
    committed = {CDC: None, GATE: 0, DONE: 5, CHANGELOG: None}
    assert rewinds(committed, lambda tp: tp.topic.endswith("-changelog")) == {CDC: None, GATE: 0}


class _FakeAiokafka:
    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[TP, ...], int | None]] = []

    def seek(self, tp: TP, offset: int) -> None:
        self.calls.append(("seek", (tp,), offset))

    async def seek_to_beginning(self, *tps: TP) -> None:
        self.calls.append(("beginning", tps, None))

    async def seek_to_end(self, *tps: TP) -> None:
        self.calls.append(("end", tps, None))


async def test_a_record_dropped_by_faust_on_a_never_committed_partition_is_read_again() -> None:
    """Faust's perform_seek after a recovery goes through this: the partition committed at 0
    goes back to 0, the one never committed to the reset policy's end (earliest here)."""
    app = create_app(StreamsConfig(store="memory://"))
    thread = cast(Any, app.consumer)._thread
    fake = _FakeAiokafka()
    thread._consumer = fake
    await thread._rewind({CDC: None, GATE: 0})
    assert fake.calls == [("seek", (GATE,), 0), ("beginning", (CDC,), None)]
