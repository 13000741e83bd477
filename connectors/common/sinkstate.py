"""Pure decisions of a sink, no I/O: coalescing, applied-state skips, transaction units.

- `coalesce`: inside one flush window keep only the newest command per target record (highest
  source version, then latest arrival): last write wins, and a delete supersedes the upserts
  queued before it. An upsert may carry only some fields (a two-way field unchanged on its side
  is left out), so the winner takes over the fields of the upserts it supersedes that it does
  not set itself: coalescing must never lose a field (a create would miss it for good).
- `AppliedState`: target record key -> last `Applied` ack, rebuilt from the compacted
  ``sync.applied.<target>`` topic. A command at or below the applied version, or with the
  applied fingerprint, costs zero requests.
- `release` / `commit_offsets`: a source transaction whose members are not all here yet waits
  (they may sit on other partitions), and offsets are committed past everything finished, in any
  window, but only below anything waiting.
- `CommitLedger`: the offsets asked to be committed until the group confirms them, so a commit
  that failed is sent again rather than lost for want of a later record on its partition.
- `units`: commands of one released source transaction (same txid, ``tx_size`` set) form one
  unit (one ``$batch`` change set; above ``max_change_set`` writes, consecutive ones, each atomic:
  see `connectors.common.writer`), in the transaction's order (``tx_order``: a project
  before its tasks); every other command is a unit of its own.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from topics import Applied, Command, DecodeError, decode_ack

__all__ = ["AppliedState", "CommitLedger", "Pending", "Write", "coalesce", "commit_offsets", "release",
           "units"]


@dataclass(frozen=True)
class Write:
    """A command about to be written, with what we last applied to that record (if anything)."""

    command: Command
    prior: Applied | None = None


def coalesce(commands: list[Command]) -> tuple[list[Command], list[Command]]:
    """(winners in arrival order, superseded commands); a winning upsert carries the fields of
    the upserts it supersedes (back to the last delete) that it does not set itself."""
    ranked: dict[str, list[tuple[tuple[int, int], Command]]] = defaultdict(list)
    for index, command in enumerate(commands):
        ranked[command.record_key].append(((command.source.version, index), command))
    winners: dict[int, Command] = {}
    for versions in ranked.values():
        versions.sort(key=lambda rc: rc[0])
        (_, last_index), winner = versions[-1]
        if winner.op == "upsert":
            earlier: dict[str, object] = {}
            for _, c in versions[:-1]:
                earlier = {} if c.op == "delete" else {**earlier, **c.fields}
            if any(k not in winner.fields for k in earlier):
                winner = winner.model_copy(update={"fields": {**earlier, **winner.fields}})
        winners[last_index] = winner
    kept = [winners[i] for i in sorted(winners)]
    superseded = [c for i, c in enumerate(commands) if i not in winners]
    return kept, superseded


class AppliedState:
    """Last applied write per target record key."""

    def __init__(self) -> None:
        self._by_key: dict[str, Applied] = {}

    def __len__(self) -> int:
        return len(self._by_key)

    def load(self, records: dict[bytes, bytes | None]) -> int:
        """Fill from the compacted topic's latest values; returns how many were unreadable."""
        bad = 0
        for value in records.values():
            if value is None:
                continue
            try:
                self.record(decode_ack(value))
            except DecodeError:
                bad += 1
        return bad

    def get(self, record_key: str) -> Applied | None:
        return self._by_key.get(record_key)

    def record(self, applied: Applied) -> None:
        current = self._by_key.get(applied.record_key)
        if current is None or applied.source_version >= current.source_version:
            self._by_key[applied.record_key] = applied

    def skip_reason(self, command: Command) -> str | None:
        """Why this command needs no request, or None if it must be written."""
        prior = self._by_key.get(command.record_key)
        if prior is None:
            return None
        if command.source.redriven and command.source.version == prior.source_version:
            return None  # re-driven to repair the target: the write it acked may be gone since
        if command.source.version <= prior.source_version:
            return "applied_version"
        if command.op == prior.op and command.fingerprint == prior.fingerprint:
            return "unchanged"
        return None


def units(commands: Iterable[Command]) -> list[list[Command]]:
    """Atomic write units in order of first appearance."""
    out: list[list[Command]] = []
    by_tx: dict[tuple[str, str], list[Command]] = {}
    for command in commands:
        txid = command.source.txid
        if txid and command.tx_size and command.tx_size > 1:
            tx_key = (command.source.system, txid)
            unit = by_tx.get(tx_key)
            if unit is None:
                unit = by_tx[tx_key] = []
                out.append(unit)
            unit.append(command)
        else:
            out.append([command])
    for unit in out:
        if len(unit) > 1:  # stable: members without a position keep their arrival order, last
            unit.sort(key=lambda c: (c.tx_order is None, c.tx_order or 0))
    return out


class Pending(Protocol):
    """A consumed record on its way through the sink."""

    @property
    def command(self) -> Command | None: ...  # None: undecodable (dead-lettered)

    @property
    def arrived(self) -> float: ...  # monotonic seconds

    @property
    def not_before(self) -> float: ...  # monotonic seconds; a deferred write waits until then

    @property
    def position(self) -> tuple[str, int, int]: ...  # topic, partition, offset


P = TypeVar("P", bound=Pending)
Partition = tuple[str, int]


def release(entries: list[P], now: float, wait_s: float) -> tuple[list[P], list[P]]:
    """(ready, held): members of a transaction wait until ``tx_size`` of them are here, or
    until the oldest has waited ``wait_s`` (then it goes as far as it got rather than never);
    a deferred write waits until its ``not_before``, unless a newer command for its record is
    here (they go together, so the record's commands keep their order and coalesce).

    A ``hold`` (a member parked in the processor, waiting for a record) is not counted: it
    keeps a transaction's members waiting past ``wait_s``, until the held member comes, when
    it arrived within ``wait_s`` of them (as it does: the processor sends it with the others;
    after a restart they all arrive again together). A hold with no member here waits
    ``wait_s`` like one, so a hold that came too late never holds a later member for ever."""
    seen: dict[str, int] = defaultdict(int)
    oldest: dict[str, float] = {}
    first_member: dict[str, float] = {}
    first_hold: dict[str, float] = {}
    fresh: set[str] = set()  # records with a command that is not waiting for its time
    for e in entries:
        c = e.command
        if c is not None and c.source.txid:
            tx = c.source.txid
            oldest[tx] = min(oldest.get(tx, e.arrived), e.arrived)
            if c.op == "hold":
                first_hold[tx] = min(first_hold.get(tx, e.arrived), e.arrived)
            else:
                seen[tx] += 1
                first_member[tx] = min(first_member.get(tx, e.arrived), e.arrived)
        if c is not None and e.not_before <= now:
            fresh.add(c.record_key)

    def held_open(tx: str) -> bool:
        return tx in first_hold and tx in first_member \
            and abs(first_hold[tx] - first_member[tx]) < wait_s

    ready: list[P] = []
    held: list[P] = []
    for e in entries:
        c = e.command
        waiting = (c is not None and c.source.txid is not None and c.tx_size is not None
                   and seen[c.source.txid] < c.tx_size
                   and (now - oldest[c.source.txid] < wait_s or held_open(c.source.txid)))
        deferred = c is not None and e.not_before > now and c.record_key not in fresh
        (held if waiting or deferred else ready).append(e)
    return ready, held


def commit_offsets(done: Mapping[Partition, int], held: Iterable[Pending],
                   positions: Mapping[Partition, int] | None = None) -> dict[Partition, int]:
    """Next offset to commit per partition: past every finished record (``done``: past the
    highest one finished, in this window or an earlier one), but never past a held one (it must
    be delivered again if we crash). One window's finished records are not enough: the records
    finished behind a held one must be passed when it is released, windows later, or its
    partition stays uncommitted for good when no later record comes (a replay test saw the
    Finance sink's group stay two records short so).

    ``positions``: the consumer's, once every record it returned is finished or held: past the
    transaction markers that follow the last record of a transactional producer (the worker's
    batches), which no record's offset passes; committing only past the last record left the
    group one offset short of the end for good."""
    out = dict(done)
    for tp, position in (positions or {}).items():
        if position > out.get(tp, 0):
            out[tp] = position
    for e in held:
        topic, partition, offset = e.position
        if (topic, partition) in out:
            out[(topic, partition)] = min(out[(topic, partition)], offset)
    return out


@dataclass
class CommitLedger:
    """How far the sink finished each partition (``done``: records finished in any window, for
    `commit_offsets`), and the offsets it asked its group to commit, until the group coordinator
    confirms them.

    Commits are asynchronous (see `connectors.common.sink.SinkEngine._commit`), and one can fail:
    sent with a generation the coordinator no longer knows (the group deleted and re-created for
    a replay, a rebalance), it is refused. A later commit of the partition supersedes it, but with
    no later record on the partition there is none, and the group would stay behind for ever,
    its records long written. So an unconfirmed offset is sent again, after ``resend_after_s``,
    while its partition is still assigned here."""

    resend_after_s: float = 5.0
    done: dict[Partition, int] = field(default_factory=dict)  # past the highest finished record
    wanted: dict[Partition, tuple[int, float]] = field(default_factory=dict)  # offset, when sent
    confirmed: dict[Partition, int] = field(default_factory=dict)

    def finish(self, ready: Iterable[Pending]) -> None:
        """Records finished (written, skipped or dead-lettered, their acks produced)."""
        for e in ready:
            topic, partition, offset = e.position
            self.done[(topic, partition)] = max(self.done.get((topic, partition), 0), offset + 1)

    def unsent(self, targets: Mapping[Partition, int]) -> dict[Partition, int]:
        """The targets beyond what was sent or confirmed already."""
        return {tp: offset for tp, offset in targets.items()
                if offset > max(self.confirmed.get(tp, -1), self.wanted.get(tp, (-1, 0.0))[0])}

    def sent(self, offsets: Mapping[Partition, int], now: float) -> None:
        for tp, offset in offsets.items():
            if offset > self.confirmed.get(tp, -1) and offset >= self.wanted.get(tp, (-1, 0.0))[0]:
                self.wanted[tp] = (offset, now)

    def confirm(self, tp: Partition, offset: int) -> None:
        """The coordinator stored ``offset`` for ``tp`` (a commit callback without error)."""
        self.confirmed[tp] = max(self.confirmed.get(tp, -1), offset)
        if tp in self.wanted and self.wanted[tp][0] <= offset:
            del self.wanted[tp]

    def due(self, now: float, assigned: Collection[Partition]) -> dict[Partition, int]:
        """Unconfirmed offsets to send again; those of partitions no longer assigned are dropped
        (their new owner commits them, and one sent from here could only move it back)."""
        for tp in [tp for tp in self.wanted if tp not in assigned]:
            del self.wanted[tp]
        return {tp: offset for tp, (offset, when) in self.wanted.items()
                if now - when >= self.resend_after_s}
