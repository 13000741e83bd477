"""The generic sink engine: commands topic -> target API -> acks, with commits after effects.

One round (a flush window):
1. take up to ``max_records`` commands: wait up to ``flush_interval_s`` for the first, then
   ``linger_s`` for more to coalesce with it (a backlog fills the window at once);
2. undecodable records -> ``sync.dlq`` (stage=sink, reason headers); they still count as done;
3. hold commands of a source transaction whose other members have not arrived yet (they may sit
   on other partitions) for up to ``tx_wait_s``, so the transaction is written whole; past it
   when the processor sent a ``hold`` for a member it keeps parked (it waits for a missing
   record): the others wait, uncommitted, until that member comes;
4. coalesce per target record, skip what the applied state says is already there;
5. write the units through the system's `ODataWriter`; transient failures are retried (after the
   target's Retry-After window) until every unit is done or rejected, never dropped; a single
   write the target can only take after commands still to come (`Deferred`: a row still
   referenced by rows whose deletes follow) is held for a later window instead, uncommitted,
   and so is the rest of its change set;
   a transaction larger than ``max_change_set`` goes as consecutive change sets, and the acks of
   each part that landed are published (Kafka-acknowledged) before its next part is sent;
6. publish an `Applied` ack per write and a dead letter per rejection (the command as attempted:
   a coalesced winner is dead-lettered with the fields it took over, so a retry re-drives them),
   await Kafka's acks;
7. only then commit consumer offsets (below any held transaction).
More than ``dlq_flood_limit`` rejections in a row stop the sink (`DlqFlood`) before the window is
dead-lettered or committed: a revoked privilege must page someone, not empty the topic.
A crash anywhere before 7 re-delivers the window; the applied state turns the re-delivery into
zero requests for everything that was acknowledged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition
from pydantic import BaseModel, ConfigDict, Field

from connectors.common import metrics
from connectors.common.clock import Clock, SystemClock
from connectors.common.errors import ConnectorError, Deferred
from connectors.common.kafka import (
    AsyncProducer,
    Headers,
    KafkaConfig,
    commands_consumer,
    read_compacted,
)
from connectors.common.sinkstate import (
    AppliedState,
    CommitLedger,
    Write,
    coalesce,
    commit_offsets,
    release,
    units,
)
from connectors.common.window import DEFAULT_LINGER_S, take
from connectors.common.writer import DEFAULT_MAX_CHANGE_SET, Again, Done, Failed, ODataWriter
from topics import (
    DLQ_SUPERSEDED_HEADER,
    DLQ_VALUE_HEADER,
    Applied,
    Command,
    DecodeError,
    System,
    ack_partition,
    applied_topic,
    commands_topic,
    decode_command,
    dlq_headers,
    encode,
)

__all__ = ["DlqFlood", "SinkEngine", "SinkSettings"]

log = logging.getLogger(__name__)

PLACE_RETRY_S = 30.0  # how often a sink whose ack topic was not listed yet asks again


class SinkSettings(BaseModel):
    """Topics, group and pacing of one sink (names injectable so tests isolate themselves)."""

    model_config = ConfigDict(frozen=True)

    target: System
    commands_topic: str | None = Field(default=None, description="Default sync.commands.<target>.")
    applied_topic: str | None = Field(default=None, description="Default sync.applied.<target>.")
    dlq_topic: str = Field(default="sync.dlq", description="Dead letters.")
    group_id: str | None = Field(default=None, description="Consumer group (default dualwrite-sink-<target>).")
    flush_interval_s: float = Field(default=0.5, gt=0, description=(
        "Longest wait for a window's first command (an idle sink wakes this often, for held "
        "transactions)."))
    linger_s: float = Field(default=DEFAULT_LINGER_S, ge=0, description=(
        "After a window's first command, wait this long for more to coalesce with it."))
    max_records: int = Field(default=500, ge=1, description="Most commands per flush window.")
    batch_size: int = Field(default=50, ge=1, le=1000, description="Operations per $batch (1 = plain requests).")
    max_change_set: int = Field(default=DEFAULT_MAX_CHANGE_SET, ge=1, description=(
        "Most writes per change set: a larger source transaction goes as consecutive change sets "
        "(atomic per part). Dataverse takes at most 1,000 requests per $batch; Finance publishes "
        "no limit, so the same."))
    tx_wait_s: float = Field(default=30.0, ge=0, description="How long to hold an incomplete source transaction.")
    dlq_flood_limit: int = Field(default=200, ge=0, description=(
        "Stop (without dead-lettering or committing the window) after this many rejected "
        "commands in a row with no success; 0 = never."))
    retry_pause_s: float = Field(default=1.0, gt=0, description="Pause before re-trying units when no Retry-After was given.")

    @property
    def commands(self) -> str:
        return self.commands_topic or commands_topic(self.target)

    @property
    def applied(self) -> str:
        return self.applied_topic or applied_topic(self.target)

    @property
    def group(self) -> str:
        return self.group_id or f"dualwrite-sink-{self.target}"


class DlqFlood(ConnectorError):
    """Too many consecutive rejections: the sink stops instead of draining into the DLQ."""


class _Stopped(Exception):
    """Stop requested while a window was still being retried."""


@dataclass
class _Entry:
    message: Message
    command: Command | None
    arrived: float = field(default_factory=time.monotonic)
    not_before: float = 0.0  # a deferred write (`Deferred`) is held until then

    @property
    def position(self) -> tuple[str, int, int]:
        return self.message.topic() or "", self.message.partition() or 0, self.message.offset() or 0


class SinkEngine:
    """Drives one `ODataWriter` from a commands topic. ``run`` until ``stop`` is set."""

    def __init__(self, settings: SinkSettings, kafka: KafkaConfig, writer: ODataWriter,
                 clock: Clock | None = None) -> None:
        self.settings = settings
        self.kafka = kafka
        self.writer = writer
        self.clock = clock or SystemClock()
        self.state = AppliedState()
        self.producer = AsyncProducer(kafka)
        self._consumer: Consumer | None = None
        self._held: list[_Entry] = []
        self._commits = CommitLedger()
        self.system = settings.target
        self._stop: asyncio.Event | None = None
        self._rejects_in_a_row = 0
        self._place_again_at: float | None = None  # when to ask the ack topic's partitions again

    async def start(self) -> None:
        raw = await asyncio.to_thread(read_compacted, self.kafka, self.settings.applied)
        bad = self.state.load(raw)
        log.info("sink %s: %d applied records loaded (%d unreadable)", self.system, len(self.state), bad)
        await self._place_acks()
        self._consumer = commands_consumer(self.kafka, self.settings.commands, self.settings.group,
                                           **{"max.poll.interval.ms": 900000,
                                              "on_commit": self._on_commit})

    async def _place_acks(self) -> None:
        """Acks go where the worker owning the row's gate state reads them in place
        (`topics.ack_partition`), once the cluster lists the ack topic's partitions; until then
        (a sink started before its topics were applied) librdkafka places them and the worker
        takes each through its gate, correct but a hop slower, and `step` asks again every
        `PLACE_RETRY_S`."""
        self._place_again_at = self.clock.monotonic() + PLACE_RETRY_S
        partitions = await asyncio.to_thread(self.producer.partitions, self.settings.applied)
        if partitions:
            self.producer.place(self.settings.applied, lambda key: ack_partition(key.decode(), partitions))
            self._place_again_at = None

    def _on_commit(self, err: KafkaError | None, partitions: list[TopicPartition]) -> None:
        """librdkafka's answer to a commit: what it confirms is not sent again (`CommitLedger`);
        what it refused is, later. Served inside ``consume``, which `step` awaits before it
        commits, so it never runs while `_commit` reads the ledger."""
        if err is not None:
            log.warning("sink %s: commit refused (%s); it will be sent again", self.system, err)
            return
        for tp in partitions:
            if tp.error is None and tp.offset >= 0:
                self._commits.confirm((tp.topic, tp.partition), tp.offset)

    async def close(self) -> None:
        if self._consumer is not None:
            await asyncio.to_thread(self._consumer.close)
            self._consumer = None
        self.producer.close()
        await self.writer.api.aclose()

    async def run(self, stop: asyncio.Event) -> None:
        self._stop = stop
        await self.start()
        try:
            while not stop.is_set():
                await self.step()
        except _Stopped:
            log.info("sink %s: stopped while retrying; the window will be redelivered", self.system)
        finally:
            await self.close()

    async def step(self) -> int:
        """One flush window; returns how many records it consumed."""
        assert self._consumer is not None, "start() first"
        if self._place_again_at is not None and self.clock.monotonic() >= self._place_again_at:
            await self._place_acks()
        messages: list[Message] = await asyncio.to_thread(
            take, self._consumer, self.settings.max_records, self.settings.flush_interval_s,
            self.settings.linger_s)
        entries: list[_Entry] = []
        dead: list[tuple[str, bytes | None, bytes | None, Headers | None]] = []
        for msg in messages:
            if msg.error():
                log.warning("consumer error: %s", msg.error())
                continue
            try:
                entries.append(_Entry(msg, decode_command(msg.value())))
            except DecodeError as exc:
                dead.append(self._dead_letter(msg, None, f"DecodeError.{exc.reason.value}", str(exc), None))
                entries.append(_Entry(msg, None))
                self._rejects_in_a_row += 1
        ready, self._held = release(self._held + entries, time.monotonic(), self.settings.tx_wait_s)
        # A skip only completes its transaction's count, a hold only kept it waiting: nothing
        # is written for either.
        skips = sum(1 for e in ready if e.command is not None and e.command.op == "skip")
        if skips:
            metrics.SKIPPED.labels(self.system, "tx_member").inc(skips)
        deferred = await self._apply([e.command for e in ready
                                      if e.command is not None and e.command.op not in ("skip", "hold")],
                                     dead, ready)
        if deferred:
            # Held, not committed: they go again with a later window (or at once with a newer
            # command for their record), while the commands they wait for get their turn.
            later = time.monotonic() + self.settings.retry_pause_s
            for e in ready:
                if e.command is not None and e.command.record_key in deferred:
                    e.not_before = later
                    self._held.append(e)
            ready = [e for e in ready if e.not_before < later]
        await self._commit(ready)
        return len(messages)

    async def _apply(self, commands: list[Command], dead: list[tuple[str, bytes | None, bytes | None, Headers | None]],
                     entries: list[_Entry]) -> set[str]:
        """Write the window; returns the record keys of the writes `Deferred` to a later one (a
        change set's with it: they go again together)."""
        winners, superseded = coalesce(commands)
        # A winner may be a merged copy: find its record by command id.
        origin = {e.command.command_id: e.message for e in entries if e.command is not None}
        absorbed: dict[str, list[str]] = {}  # record key -> ids of the commands its winner superseded
        for command in superseded:
            absorbed.setdefault(command.record_key, []).append(command.command_id)
        if superseded:
            metrics.SKIPPED.labels(self.system, "superseded").inc(len(superseded))
        todo: list[Command] = []
        for command in winners:
            reason = self.state.skip_reason(command)
            if reason is None:
                todo.append(command)
            else:
                metrics.SKIPPED.labels(self.system, reason).inc()
        pending = [[Write(c, self.state.get(c.record_key)) for c in unit] for unit in units(todo)]
        acks: list[tuple[str, bytes | None, bytes | None, Headers | None]] = []
        applied: list[Applied] = []
        deferred: set[str] = set()
        early: set[str] = set()  # command ids acked when their part of a split transaction landed

        async def landed(done: list[Done]) -> None:
            """Acks of a landed part, durable before the next part of its transaction is sent:
            after a crash between parts the applied state skips the landed ones (zero requests)."""
            made = []
            for d in done:
                with contextlib.suppress(ValueError):  # dead-lettered with the window below
                    made.append(self._ack(d.write.command, d))
            await self.producer.produce_all([self._ack_record(a) for a in made])
            for a in made:
                self.state.record(a)
                early.add(a.command_id)

        while pending:
            outcomes = await self.writer.write(pending, landed, self.settings.max_change_set)
            unit_of = {w.command.command_id: n for n, u in enumerate(pending) for w in u}
            # A unit the target can take only after commands still to come (`Deferred`: a
            # contract header still referenced by a project whose unlink is in it, and by lines
            # whose deletes a later window brings) waits for a later window, whole: retried in
            # place, it would hold back the very window that brings them.
            later_units = {unit_of[o.write.command.command_id] for o in outcomes
                           if isinstance(o, Again) and isinstance(o.retry, Deferred)}
            again: dict[str, Again] = {}
            for outcome in outcomes:
                command = outcome.write.command
                if isinstance(outcome, Done):
                    try:
                        ack = self._ack(command, outcome)
                    except ValueError as exc:  # the target answered something we cannot record
                        dead.append(self._dead_letter(origin[command.command_id], command, type(exc).__name__,
                                                      f"applied, but the answer cannot be acked: {exc}", None,
                                                      absorbed.get(command.record_key)))
                        self._rejects_in_a_row += 1
                        continue
                    applied.append(ack)
                    self._rejects_in_a_row = 0
                    if command.command_id not in early:
                        acks.append(self._ack_record(ack))
                    metrics.APPLIED.labels(self.system, command.op).inc()
                elif isinstance(outcome, Failed):
                    msg = origin[command.command_id]
                    r = outcome.rejected
                    dead.append(self._dead_letter(msg, command, r.error_class, f"{r.reason}: {r.body}", r.status,
                                                  absorbed.get(command.record_key)))
                    self._rejects_in_a_row += 1
                elif unit_of[command.command_id] in later_units:
                    deferred.add(command.record_key)
                else:
                    again[command.command_id] = outcome
            # Resend what failed transiently, after the wait: a change set comes back whole, a
            # split transaction from the part that did not land (the parts before it are done).
            pending = [[w for w in u if w.command.command_id in again] for u in pending]
            pending = [u for u in pending if u]
            if pending:
                waits = [a.retry.retry_after for a in again.values() if a.retry.retry_after is not None]
                delay = max(waits) if waits else self.settings.retry_pause_s
                log.warning("sink %s: %d unit(s) to retry in %.1fs (%s)", self.system, len(pending),
                            delay, next(iter(again.values())).retry.reason)
                await self.clock.sleep(max(delay, self.writer.api.not_before.remaining()))
                if self._stop is not None and self._stop.is_set():
                    # Nothing committed for this window: it comes back after restart, and the
                    # acks already published make the done part of it cost nothing.
                    await self.producer.produce_all(acks + dead)
                    raise _Stopped
                pending = [[Write(w.command, self.state.get(w.command.record_key)) for w in u] for u in pending]
        limit = self.settings.dlq_flood_limit
        if limit and self._rejects_in_a_row >= limit:
            # Everything is being refused (revoked privilege, wrong map, target down to 400s):
            # stop loudly instead of draining the topic into the DLQ. Acks of what did land
            # are kept; nothing of this window is dead-lettered or committed.
            await self.producer.produce_all(acks)
            raise DlqFlood(f"{self._rejects_in_a_row} commands rejected in a row (limit {limit}); "
                           f"last: {dead[-1][3] if dead else ''}")
        metrics.DLQ.labels(self.system, "sink").inc(len(dead))
        await self.producer.produce_all(acks + dead)
        for ack in applied:
            self.state.record(ack)
        return deferred

    def _ack(self, command: Command, done: Done) -> Applied:
        return Applied(
            command_id=command.command_id, map=command.map, target=command.target, entity=command.entity,
            key=command.key, op=command.op, source_version=command.source.version,
            source_system=command.source.system, source_table=command.source.table,
            source_id=command.source.id, fingerprint=command.fingerprint, etag=done.etag,
            target_id=done.target_id, applied_ts_ms=int(self.clock.time() * 1000))

    def _ack_record(self, ack: Applied) -> tuple[str, bytes | None, bytes | None, Headers | None]:
        return (self.settings.applied, ack.record_key.encode(), encode(ack), None)

    def _dead_letter(self, msg: Message, command: Command | None, error_class: str, message: str,
                     status: int | None, superseded: list[str] | None = None,
                     ) -> tuple[str, bytes | None, bytes | None, Headers | None]:
        """The dead letter of one consumed record: its key and value with the reason headers.

        When the command that failed had superseded others of its record in this window
        (coalescing merged their fields into it, and their offsets are committed with this
        one), the value is the command that was actually attempted, merged fields included,
        not the winner's original bytes: `dualwrite dlq retry` sends it back to the commands
        topic (``dlq.original.topic``) and the whole write is tried again. The headers
        ``dlq.value`` (``merged-command``) and ``dlq.superseded`` (their command ids) say so.
        """
        headers = list[tuple[str, str | bytes | None]](dlq_headers(
            stage="sink", error_class=error_class, message=message,
            map_name=command.map if command else None, topic=msg.topic(), partition=msg.partition(),
            offset=msg.offset(), http_status=status, ts_ms=int(self.clock.time() * 1000)))
        value = msg.value()
        if command is not None and superseded:
            value = encode(command)
            headers += [(DLQ_VALUE_HEADER, b"merged-command"),
                        (DLQ_SUPERSEDED_HEADER, ",".join(superseded).encode())]
        return (self.settings.dlq_topic, msg.key(), value, headers)

    async def _commit(self, ready: list[_Entry]) -> None:
        """Commit past every record finished so far, in this window or an earlier one, but never
        past a held transaction member (`commit_offsets`).

        Asynchronously: the effects are durable already (written, acks produced), so a commit
        lost in a crash or a rebalance only redelivers records the applied state makes cost
        nothing, and a later commit supersedes it. A synchronous commit has no timeout in
        confluent-kafka and can hang (confluent-kafka-python#1801). An asynchronous commit can be
        refused, though, and with no later record on its partition nothing would supersede it:
        what the group has not confirmed is sent again (`CommitLedger`), from idle windows too."""
        assert self._consumer is not None
        now = time.monotonic()
        self._commits.finish(ready)
        # Every record consumed so far is finished or held now: the consumer's position passes
        # only them and transaction markers.
        positions = {(tp.topic, tp.partition): tp.offset
                     for tp in self._consumer.position(self._consumer.assignment()) if tp.offset >= 0}
        fresh = self._commits.unsent(commit_offsets(self._commits.done, self._held, positions))
        self._commits.sent(fresh, now)
        assigned = {(tp.topic, tp.partition) for tp in self._consumer.assignment()}
        again = {tp: o for tp, o in self._commits.due(now, assigned).items() if tp not in fresh}
        self._commits.sent(again, now)
        offsets = [TopicPartition(t, p, o) for (t, p), o in {**again, **fresh}.items()]
        if not offsets:
            return
        try:
            self._consumer.commit(offsets=offsets, asynchronous=True)
        except KafkaException as exc:
            # Typically a rebalance took the partition meanwhile: its new owner gets these
            # records again, and the acks we published make them cost nothing there.
            log.warning("sink %s: commit failed (%s); records will be redelivered", self.system, exc)
