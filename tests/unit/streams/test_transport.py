"""The worker's consumer is built with the configured fetch wait, not Faust's fixed 1,500 ms.

The consumer is only constructed here (aiokafka builds its fetcher from the attribute when it
starts); no broker is contacted.
"""

from __future__ import annotations

import pytest

from streams.app import create_app
from streams.config import StreamsConfig
from streams.transport import Transport

pytestmark = pytest.mark.unit


async def test_the_worker_consumer_waits_as_configured_not_as_faust_fixes_it() -> None:
    app = create_app(StreamsConfig(store="memory://", fetch_max_wait_ms=77))
    assert isinstance(app.transport, Transport)
    thread = app.consumer._thread
    consumer = thread._create_worker_consumer(app.transport)
    try:
        assert consumer._fetch_max_wait_ms == 77
        assert consumer._group_instance_id == app.conf.consumer_group_instance_id  # Faust's own kwargs kept
    finally:
        await consumer.stop()


async def test_the_default_wait_is_short() -> None:
    app = create_app(StreamsConfig(store="memory://"))
    consumer = app.consumer._thread._create_worker_consumer(app.transport)
    try:
        assert consumer._fetch_max_wait_ms == 100
    finally:
        await consumer.stop()
