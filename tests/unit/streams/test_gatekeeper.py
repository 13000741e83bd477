"""The gatekeeper applies one message at a time: an ack handled in place by the acks agent
never reads a row's state while the gate agent's emit of that row waits in a send."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from streams.config import StreamsConfig
from streams.gatekeeper import Gatekeeper
from streams.handlers import Position
from streams.maps import default_registry
from streams.wire import AppliedMsg, PendingMsg
from tests.unit.streams.test_handlers import EMIT_KEY, PROJECT_KEY, PROJECT_RECORD, project
from topics import Applied

pytestmark = pytest.mark.unit


class _Table(dict[str, Any]):
    @property
    def data(self) -> _Table:  # what `StoreReads` reads: the store
        return self


class _Runtime:
    """What the gatekeeper uses of `streams.app.Runtime`; a command's send waits for ``go``."""

    def __init__(self) -> None:
        self.maps, self.config, self.gate_topic_name = default_registry(), StreamsConfig(), "unit-gate"
        self.tables: dict[str, _Table] = {}
        self.go = asyncio.Event()

    def table(self, name: str) -> _Table:
        return self.tables.setdefault(name, _Table())

    async def send(self, name: str, key: bytes | None, value: bytes | None, *,
                   partition: int | None = None, headers: Any = None) -> None:
        if name.startswith("commands."):
            await self.go.wait()  # the producer's buffer is full: the emit waits mid-way
        await asyncio.sleep(0)

    async def send_gate(self, key: str, msg: Any, partition: int | None = None) -> None:
        await self.send("gate", key.encode(), b"", partition=partition)


async def test_an_ack_read_while_the_emit_of_its_row_waits_in_a_send_is_applied_after_it():
    rt = _Runtime()
    keeper = Gatekeeper(rt)  # type: ignore[arg-type]
    item = project()
    emit = asyncio.create_task(keeper.handle(PendingMsg(item=item), Position(EMIT_KEY, 0, 10, 5_000)))
    await asyncio.sleep(0.01)  # the emit has sent its facts and waits in its command's send
    ack = Applied(command_id=item.id, map="projects", target="finance", entity="ProjectsV2", key=PROJECT_KEY,
                  op="upsert", source_version=3, source_system="dataverse", source_table="msdyn_projects",
                  source_id=item.source.id, fingerprint="fp-acked", target_id="5637", applied_ts_ms=1)
    in_place = asyncio.create_task(keeper.handle(AppliedMsg(ack=ack),
                                                 Position(EMIT_KEY, 0, 4, 5_000, "sync.applied.finance")))
    await asyncio.sleep(0.01)
    rt.go.set()
    await asyncio.gather(emit, in_place)
    state = rt.tables["targets"][PROJECT_RECORD]
    assert state["command_id"] == item.id and state["sent"]  # the emit's record of its write
    assert state["applied_fp"] == "fp-acked" and state["acked"] == item.id  # and the ack's, on top of it
