"""Source checkpoints on the compacted ``sync.source-offsets`` topic (nothing on local disk).

Key `SourceOffsetKey` (system, table), value `SourceOffset`. The latest record per key is the
position to resume from; a source writes one only after Kafka acknowledged every event it
covers, so resuming never skips a change (it may re-emit the uncheckpointed tail, which the
processor drops by version).

Anyone who can produce to the topic can write a checkpoint, so a loaded position is a claim, not
a fact: an undecodable one of ours is ignored with a warning (the table snapshots afresh) and
the reader judges every position before it follows one (`UntrustedPosition` in the source engine).
"""

from __future__ import annotations

import asyncio
import logging

from connectors.common.kafka import AsyncProducer, KafkaConfig, read_compacted
from topics import DecodeError, SourceOffset, SourceOffsetKey, System, decode_model, encode

__all__ = ["CheckpointStore"]

log = logging.getLogger(__name__)


class CheckpointStore:
    def __init__(self, kafka: KafkaConfig, producer: AsyncProducer, topic: str) -> None:
        self._kafka = kafka
        self._producer = producer
        self.topic = topic

    async def load(self, system: System) -> dict[str, SourceOffset]:
        """Latest checkpoint per table of ``system``."""
        raw = await asyncio.to_thread(read_compacted, self._kafka, self.topic)
        out: dict[str, SourceOffset] = {}
        for key_bytes, value in raw.items():
            try:
                key = decode_model(SourceOffsetKey, key_bytes)
            except DecodeError:
                continue  # someone else's record on a shared topic; not ours to judge
            if key.system != system or value is None:
                continue
            try:
                out[key.table] = decode_model(SourceOffset, value)
            except DecodeError as exc:
                log.warning("checkpoint of %s/%s on %s is unreadable (%s); ignoring it",
                            system, key.table[:200], self.topic, exc)
        return out

    async def save(self, offset: SourceOffset) -> None:
        """Write and wait for Kafka's acknowledgement."""
        key = encode(SourceOffsetKey(system=offset.system, table=offset.table))
        await self._producer.produce(self.topic, key, encode(offset))
