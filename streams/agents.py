"""The agents: thin loops that decode, call pure functions, update a table and send.

    ingest   CDC topics -> `streams.ingest` (decode, dedupe, route) -> gate topic (facts,
             pending changes, target observations)
    acks     sync.applied.<target> -> handled in place (its partition is the row's gate
             partition, `topics.ack_partition`), else gate topic keyed by the target record
    control  sync.control -> gate topic, one copy per partition
    gate     gate topic -> `streams.handlers` (park, release, pair, emit) -> `Gatekeeper.apply`
    tick     a timer -> gate topic, one tick per partition (transaction time-outs)
    parked_age  a timer -> the oldest parked change's age per map (a Prometheus gauge)

No record stops an agent: one that cannot be decoded, routed or handled goes to ``sync.dlq``
with its stage (``decode``, ``route``, ``transform``, ``plan``, ``emit``, ``gate``), map, error
class and message, and the agent reads on.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Collection, Mapping
from typing import Any

from faust.types import TP

from streams import metrics
from streams.app import Runtime
from streams.gatekeeper import Gatekeeper, Position, StoreReads
from streams.ingest import Ingest, Refused
from streams.offsets import CommittedOffsets
from streams.status import oldest_by_map, parked_entries
from streams.watchdog import (
    Partition,
    PartitionStarts,
    Positions,
    Watchdog,
    gate_hint,
    report_expired,
)
from streams.wire import (
    AppliedMsg,
    ControlMsg,
    TickMsg,
    decode_gate,
    encode_gate,
)
from topics import (
    RETRY_HEADER,
    DecodeError,
    MapState,
    ack_partition,
    decode_ack,
    decode_model,
    dlq_headers,
    is_retry,
    present_fact,
)

__all__ = ["observe_parked_age", "register_agents"]

log = logging.getLogger(__name__)


def _now_ms() -> int:
    return int(time.time() * 1000)


def observe_parked_age(rt: Runtime, now_ms: int) -> None:
    """Set `metrics.PARKED_OLDEST_AGE` per map from this worker's parked table (its partitions),
    so an alert can fire on a change stuck past an age (`streams.status.oldest_by_map`)."""
    started = time.monotonic()
    ages = oldest_by_map(parked_entries(rt.table("parked"), now_ms), (m.name for m in rt.maps.maps))
    for name, age in ages.items():
        metrics.PARKED_OLDEST_AGE.labels(name).set(age)
    took = time.monotonic() - started
    if took > 1.0:  # it runs on the event loop: say so when it holds the gate back noticeably
        log.warning("reading the parked table for its oldest ages took %.1f s", took)


async def _dead_letter(rt: Runtime, event: Any, stage: str, error: str, message: str,
                       map_name: str | None = None) -> None:
    metrics.DLQ.labels(stage, error).inc()
    m = event.message
    headers = dlq_headers(stage=stage, error_class=error, message=message, map_name=map_name,
                          topic=m.topic, partition=m.partition, offset=m.offset, ts_ms=_now_ms())
    if is_retry(getattr(m, "headers", None)):  # it failed again after `dualwrite dlq retry`
        headers.append((RETRY_HEADER, b"1"))
    await rt.send("dlq", m.key, m.value, headers=headers)


def register_agents(rt: Runtime) -> None:
    app, maps = rt.app, rt.maps
    versions = rt.table("versions")
    gatekeeper = Gatekeeper(rt)
    view = gatekeeper.known
    # Room for a gate record under the producer's request limit (record framing and headers).
    decide = Ingest(maps, rt.cdc_tables, versions, view,
                    gate_max_bytes=int(app.conf.producer_max_request_size) - 16_384,
                    reads=StoreReads(versions))

    async def to_gate(key: str, msg: Any, partition: int | None = None) -> None:
        await rt.send("gate", key.encode(), encode_gate(msg), partition=partition)

    committed_offsets = CommittedOffsets(app.conf.id, rt.config.bootstrap_list(), rt.config.aiokafka_auth())

    async def starts(tps: Collection[Partition]) -> Mapping[Partition, int | None]:
        """Where the records of partitions just assigned must start: the group's committed
        offset (where Faust seeks them), or the log start when the group never committed one;
        raises when either is not known (then the first record sets the count)."""
        found = await app.consumer.earliest_offsets(*(TP(t, p) for t, p in tps))
        committed = await committed_offsets.fetch_async(tps)
        if committed is None:
            raise LookupError("committed offsets not read")
        log_starts = {(tp.topic, tp.partition): offset for tp, offset in found.items()}
        report_expired(committed, log_starts)
        return {tp: max(committed.get(tp) or 0, offset or 0) for tp, offset in log_starts.items()}

    partition_starts = PartitionStarts(starts, lambda: [(tp.topic, tp.partition) for tp in app.consumer.assignment()])

    async def check_skipped(m: Any, what: str) -> None:
        if not watchdog.knows(m.topic, m.partition):
            start = await partition_starts.of((m.topic, m.partition))
            if start is not None:
                watchdog.expect(m.topic, m.partition, start)
        if watchdog.skipped(m.topic, m.partition, m.offset):
            watchdog.exit(f"{what} skipped offsets of {m.topic} before {m.partition}:{m.offset}")

    @app.agent(rt.topic("cdc"), name="ingest")
    async def ingest(stream: Any) -> None:
        async for event in stream.events():
            m = event.message
            await check_skipped(m, "ingest")
            taken = decide.take(m.topic, m.key, m.value, m.offset, retried=is_retry(m.headers),
                                now_ms=_now_ms())
            if isinstance(taken, Refused):
                await _dead_letter(rt, event, taken.stage, taken.error, taken.message)
                continue
            if taken is None:  # a tombstone or a duplicate
                continue
            for r in taken.rejected:
                # No gate state here to park in: an ingest rejection always goes to the DLQ,
                # but it counts towards pausing its map.
                await gatekeeper.rejected(r.map, None)
                await _dead_letter(rt, event, r.stage, r.error, r.message, r.map)
            for key_bytes, value in taken.records:
                await rt.send("gate", key_bytes, value)

    @app.agent(rt.topic("applied"), name="acks")
    async def acks(stream: Any) -> None:
        async for event in stream.events():
            m = event.message
            try:
                ack = decode_ack(m.value)
            except DecodeError as exc:
                await _dead_letter(rt, event, "decode", f"DecodeError.{exc.reason.value}", str(exc))
                continue
            key, msg = present_fact(ack.record_key), AppliedMsg(ack=ack)
            if (m.partition != ack_partition(ack.record_key, rt.config.partitions)
                    or app.consumer.topic_partitions(m.topic) != rt.config.partitions):
                # Not where the sink places acks (a sink of an earlier release, another
                # producer), or a topic sized unlike the gate: the gate partition that owns
                # the row's state may be another worker's. Sent to it, as before.
                await to_gate(key, msg)
                continue
            # The ack sits in the partition of the row's gate key, in a topic of the gate's
            # count: Faust's assignor gives a worker the same partitions of all such topics,
            # so this worker owns that gate state and handles the ack here, without a hop.
            try:
                await gatekeeper.handle(msg, Position(key, m.partition, m.offset, _now_ms(), m.topic))
            except Exception as exc:  # as the gate agent: the ack itself is dead-lettered
                log.exception("ack at %s:%s:%s failed", m.topic, m.partition, m.offset)
                await _dead_letter(rt, event, "gate", type(exc).__name__, str(exc), ack.map)

    @app.agent(rt.topic("control"), name="control")
    async def control(stream: Any) -> None:
        async for event in stream.events():
            try:
                state = decode_model(MapState, event.message.value)
            except DecodeError as exc:
                await _dead_letter(rt, event, "decode", f"DecodeError.{exc.reason.value}", str(exc))
                continue
            for p in range(rt.config.partitions):  # every partition keeps its own copy
                await to_gate(f"control:{state.map}", ControlMsg(map=state.map, state=state.state), p)

    watchdog = Watchdog(rt.config.stall_timeout_s, shared=frozenset(rt.cdc_tables))

    @app.on_partitions_revoked.connect
    def _forget_offsets(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        watchdog.last_offsets.clear()  # partitions may come back moved on by another worker
        partition_starts.clear()
        view.clear()  # facts of partitions owned elsewhere from now on would go stale here
        gatekeeper.published.clear()  # another worker may send those key facts from now on

    facts = rt.table("facts")

    @facts.on_recover  # type: ignore[untyped-decorator]
    async def _warm_view() -> None:
        """After a (re)start or a rebalance the view starts from what the gate's table holds for
        this worker's partitions, instead of cold: each fact would otherwise cost its first
        change a hop through the gate topic."""
        await view.fill_from(facts.items())
        log.info("fact view warmed with %d facts of this worker's partitions", len(view))

    @app.agent(rt.topic("gate"), name="gate")
    async def gate(stream: Any) -> None:
        async for event in stream.events():
            m = event.message
            await check_skipped(m, "the gate")
            try:
                msg = decode_gate(m.value)
            except ValueError as exc:
                await _dead_letter(rt, event, "gate", type(exc).__name__, str(exc))
                continue
            key = m.key.decode() if isinstance(m.key, bytes) else str(m.key)
            try:
                await gatekeeper.handle(msg, Position(key, m.partition, m.offset, _now_ms()))
            except Exception as exc:  # changes are guarded inside; this is the last line
                log.exception("gate message at %s:%s failed", m.partition, m.offset)
                await _dead_letter(rt, event, "gate", type(exc).__name__, str(exc),
                                   getattr(msg, "map", None))

    def busy() -> bool:
        recovery = getattr(app.tables, "recovery", None)
        completed = getattr(recovery, "completed", None)
        recovered = completed.is_set() if completed is not None else True
        return bool(app.rebalancing) or not recovered

    watched = {name for key in ("cdc", "applied", "control", "gate") for name in rt.topic(key).topics}

    def positions() -> Positions:
        """Committed and end offset of every assigned partition the agents read (called on the
        watchdog's thread: the committed offsets asked of the group coordinator, the ends as
        the consumer last fetched them). `RuntimeError` when the coordinator did not answer:
        this check is skipped, not failed."""
        consumer = app.consumer
        assigned = [tp for tp in list(consumer.assignment()) if tp.topic in watched]
        committed = committed_offsets.fetch([(tp.topic, tp.partition) for tp in assigned])
        if committed is None:
            raise RuntimeError("committed offsets not read")
        out: dict[tuple[str, int], tuple[int | None, int | None]] = {}
        for tp in assigned:
            try:
                end = consumer.highwater(tp)
            except Exception:  # not fetched yet, or reassigned meanwhile
                end = None
            out[(tp.topic, tp.partition)] = (committed.get((tp.topic, tp.partition)), end)
        return out

    def explain() -> str:
        gate_topics = set(rt.topic("gate").topics)
        assigned = sum(1 for tp in list(app.consumer.assignment()) if tp.topic in gate_topics)
        return gate_hint(assigned, rt.config.instance_id is not None)

    @app.task  # type: ignore[untyped-decorator]
    async def start_watchdog() -> None:
        watchdog.watch(lambda: gatekeeper.last_handled, busy, positions, explain)

    @app.timer(rt.config.tick_interval_s)  # type: ignore[untyped-decorator]
    async def tick() -> None:
        now = _now_ms()
        for p in range(rt.config.partitions):
            await to_gate("tick", TickMsg(ts_ms=now), p)

    @app.timer(metrics.PARKED_AGE_INTERVAL_S)  # type: ignore[untyped-decorator]
    async def parked_age() -> None:
        observe_parked_age(rt, _now_ms())
