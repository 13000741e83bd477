"""`Runtime.send`: the agents' records handed to Faust's producer, and a lost one ends the worker."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from streams import app as app_module
from streams.app import create_app, exit_if_lost
from streams.config import StreamsConfig
from streams.watchdog import EXIT_STALLED
from streams.wire import TickMsg, encode_gate

pytestmark = pytest.mark.unit


class _Exited(Exception):
    pass


@pytest.fixture
def exits(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    codes: list[int] = []

    def fake_exit(code: int) -> None:
        codes.append(code)
        raise _Exited

    monkeypatch.setattr(app_module.os, "_exit", fake_exit)
    return codes


async def test_a_record_the_producer_gave_up_on_ends_the_worker_for_a_restart(exits):
    lost: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    lost.set_exception(TimeoutError("request timed out"))
    with pytest.raises(_Exited):
        exit_if_lost(lost)
    assert exits == [EXIT_STALLED]


async def test_a_delivered_or_cancelled_record_does_not(exits):
    loop = asyncio.get_running_loop()
    delivered, cancelled = loop.create_future(), loop.create_future()
    delivered.set_result(object())
    cancelled.cancel()
    exit_if_lost(delivered)
    exit_if_lost(cancelled)
    assert exits == []


async def test_send_names_the_topic_and_passes_key_partition_and_headers(tmp_path):
    config = StreamsConfig(app_id=f"unit-{uuid.uuid4().hex[:8]}", store="memory://", data_dir=tmp_path,
                           topic_prefix="t.")
    rt = create_app(config).runtime
    calls: list[tuple[Any, ...]] = []

    class Producer:
        async def send(self, *args: Any) -> asyncio.Future[Any]:
            calls.append(args)
            done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            done.set_result(None)
            return done

    rt.app.producer = Producer()
    await rt.send("gate", b"k", b"v")
    await rt.send("dlq", b"k", b"v", headers=[("dlq.stage", b"decode")])
    await rt.send("commands.finance", b"k", b"v", partition=2)
    assert calls == [(f"{config.app_id}-gate", b"k", b"v", None, None, None),
                     ("t.sync.dlq", b"k", b"v", None, None, [("dlq.stage", b"decode")]),
                     ("t.sync.commands.finance", b"k", b"v", 2, None, None)]
    assert "cdc" not in rt.topic_names  # several topics: never a target of `send`
    calls.clear()
    await rt.send_gate("tick", TickMsg(ts_ms=5), partition=1)  # the gatekeeper's: encoded here
    assert calls == [(f"{config.app_id}-gate", b"tick", encode_gate(TickMsg(ts_ms=5)), 1, None, None)]
