"""`dualwrite dlq`: read, select, summarize and re-drive the dead letters on ``sync.dlq``.

A dead letter is the original record (key and value bytes) with ``dlq.*`` headers naming the
stage, map, error and original topic/partition/offset (`topics.dlq`). Re-driving produces the
original key and value to the original topic again with the ``dualwrite.retry`` header, but
only to a topic the pipeline reads its input from (`redrive_topics`: CDC and command topics of
the catalog, the worker's gate topic); the header is data and never picks another topic. That
is safe because the pipeline is idempotent:

- a CDC record dead-lettered at the ``transform`` stage had its source version recorded by the
  ingest dedupe; the retry header lets the same version through once more (never an older one);
- a CDC record dead-lettered at ``decode`` never reached dedupe;
- a command dead-lettered by a sink (``sync.commands.<target>``) was never applied, so the
  sink's applied state holds at most an older version of that target row and writes it; if a
  newer version has been applied since, the sink skips the old command (``applied_version``),
  which is what must happen.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import orjson

from connectors.common.kafka import KafkaConfig, KafkaRecord, read_records
from dualwrite.ops.errors import OpsError
from dualwrite.ops.kafka import OutRecord, produce_records, reaching, require_topic
from streams.pending import Pending
from streams.wire import ITEM_STAGES, PendingMsg, encode_gate
from topics import RETRY_HEADER, ChangeEvent, Command, read_headers

__all__ = [
    "DLQ_TOPIC",
    "DeadLetter",
    "NotFound",
    "Position",
    "RetryPlan",
    "Summary",
    "dead_letter",
    "find",
    "parse_position",
    "read_dead_letters",
    "redrive",
    "redrive_topics",
    "retry_headers",
    "retry_plan",
    "select",
    "summarize",
]

DLQ_TOPIC = "sync.dlq"
GATE_SUFFIX = "-gate"  # the worker's internal topic, `<app id>-gate`
DEFAULT_APP_ID = "dualwrite-streams"  # `dualwrite worker --app-id`'s default

Position = tuple[int, int]  # (partition, offset) on sync.dlq


class NotFound(OpsError):
    exit_code = 2


@dataclass(frozen=True)
class DeadLetter:
    """A record of ``sync.dlq`` with its reason headers read out."""

    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: dict[str, str]
    timestamp_ms: int | None

    @property
    def position(self) -> Position:
        return (self.partition, self.offset)

    @property
    def stage(self) -> str:
        return self.headers.get("dlq.stage", "?")

    @property
    def map(self) -> str | None:
        return self.headers.get("dlq.map")

    @property
    def error_class(self) -> str:
        return self.headers.get("dlq.error.class", "?")

    @property
    def message(self) -> str:
        return self.headers.get("dlq.error.message", "")

    @property
    def original_topic(self) -> str | None:
        return self.headers.get("dlq.original.topic") or None

    @property
    def original_position(self) -> str:
        p = self.headers.get("dlq.original.partition")
        o = self.headers.get("dlq.original.offset")
        return f"{p}:{o}" if p is not None and o is not None else ""

    @property
    def ts_ms(self) -> int | None:
        raw = self.headers.get("dlq.ts_ms")
        if raw is not None and raw.isdigit():
            return int(raw)
        return self.timestamp_ms

    @property
    def retried(self) -> bool:
        """The failing record was itself a retry (``dualwrite.retry`` was on it)."""
        return RETRY_HEADER in self.headers

    def value_json(self) -> object | None:
        """The value parsed as JSON, or None when it is not JSON."""
        if self.value is None:
            return None
        try:
            parsed: object = orjson.loads(self.value)
        except orjson.JSONDecodeError:
            return None
        return parsed

    def as_json(self, *, full: bool = False) -> dict[str, object]:
        out: dict[str, object] = {
            "position": f"{self.partition}:{self.offset}", "partition": self.partition,
            "offset": self.offset, "stage": self.stage, "map": self.map,
            "error_class": self.error_class, "message": self.message,
            "original_topic": self.original_topic, "original_position": self.original_position,
            "http_status": self.headers.get("dlq.http.status"), "ts_ms": self.ts_ms,
            "retried": self.retried,
            "key": _text(self.key),
        }
        if full:
            parsed = self.value_json()
            out["headers"] = self.headers
            out["value"] = parsed if parsed is not None else _text(self.value)
        return out


def _text(data: bytes | None) -> str | None:
    return data.decode(errors="replace") if data is not None else None


def dead_letter(record: KafkaRecord) -> DeadLetter:
    return DeadLetter(partition=record.partition, offset=record.offset, key=record.key,
                      value=record.value, headers=read_headers(record.headers),
                      timestamp_ms=record.timestamp_ms)


def parse_position(text: str) -> Position:
    """``"PARTITION:OFFSET"`` -> (partition, offset); ValueError with the expected form."""
    part, sep, off = text.strip().partition(":")
    if not sep or not part.isdigit() or not off.isdigit():
        raise ValueError(f"{text!r} is not PARTITION:OFFSET (e.g. 0:42; `dualwrite dlq list` "
                         "shows them)")
    return (int(part), int(off))


def select(letters: Iterable[DeadLetter], *, stage: str | None = None, map_name: str | None = None,
           positions: Iterable[Position] | None = None) -> list[DeadLetter]:
    """The dead letters matching every given filter, in the order given."""
    wanted = set(positions) if positions is not None else None
    return [d for d in letters
            if (stage is None or d.stage == stage)
            and (map_name is None or d.map == map_name)
            and (wanted is None or d.position in wanted)]


def find(letters: Iterable[DeadLetter], position: Position) -> DeadLetter:
    for d in letters:
        if d.position == position:
            return d
    raise NotFound(f"no dead letter at {position[0]}:{position[1]} on {DLQ_TOPIC} (expired, or "
                   "a typo? `dualwrite dlq list` shows the positions).")


@dataclass(frozen=True)
class Summary:
    total: int
    by_stage: dict[str, int]
    by_map: dict[str, int]
    by_error: dict[str, int]

    def as_json(self) -> dict[str, object]:
        return {"total": self.total, "by_stage": self.by_stage, "by_map": self.by_map,
                "by_error_class": self.by_error}


def summarize(letters: Iterable[DeadLetter]) -> Summary:
    """Counts by stage, map (``-`` when none) and error class, most frequent first."""
    items = list(letters)

    def count(values: Iterable[str]) -> dict[str, int]:
        return dict(Counter(values).most_common())

    return Summary(total=len(items), by_stage=count(d.stage for d in items),
                   by_map=count(d.map or "-" for d in items),
                   by_error=count(d.error_class for d in items))


@dataclass(frozen=True)
class RetryPlan:
    """What `dualwrite dlq retry` will produce, and what it leaves out and why."""

    records: list[OutRecord]
    unroutable: list[DeadLetter]  # no original topic, or a gate value that is not a change
    repeats: list[DeadLetter]  # same record as one already in the plan (failed again after a retry)
    refused: list[DeadLetter] = field(default_factory=list)  # original topic not a re-drive target


def retry_headers(origin: str) -> list[tuple[str, str | bytes | None]]:
    """The headers of a re-driven record: ``dualwrite.retry`` (the worker lets its source version
    through once more) and ``dualwrite.retry.from`` (where it came from: ``sync.dlq:P:O``, or
    ``replay:<topic>:P:O`` for `dualwrite replay`)."""
    return [(RETRY_HEADER, b"1"), ("dualwrite.retry.from", origin.encode())]


def redrive_topics(topic_prefix: str = "", app_id: str = DEFAULT_APP_ID) -> frozenset[str]:
    """Where a dead letter may be sent back: the catalog's topics that carry change events (CDC)
    or commands, and the gate topic of the worker ``app_id``. A ``dlq.original.topic`` header is
    data (anyone who can write to the DLQ writes it), so it never chooses another topic."""
    from dualwrite.capture import topic_catalog
    from dualwrite.settings import Settings

    names = {spec.name for spec in topic_catalog(Settings()) if spec.value_model in (ChangeEvent, Command)}
    return frozenset({topic_prefix + name for name in names} | {app_id + GATE_SUFFIX})


def retry_plan(letters: Iterable[DeadLetter], *, topic_prefix: str = "",
               app_id: str = DEFAULT_APP_ID) -> RetryPlan:
    """The original key and value of each dead letter to its original topic, with the retry
    header and where it came from on the DLQ; a change the gate dead-lettered goes back to the
    gate topic as the gate message it was. An original topic outside `redrive_topics` is
    refused (listed, never produced to).

    A record that was re-driven and failed again is on the DLQ twice; it is sent once (the
    first time it appears), so retrying everything twice does not double it each time.
    """
    allowed = redrive_topics(topic_prefix, app_id)
    gate = app_id + GATE_SUFFIX
    records: list[OutRecord] = []
    unroutable: list[DeadLetter] = []
    repeats: list[DeadLetter] = []
    refused: list[DeadLetter] = []
    seen: set[tuple[str, bytes | None, bytes | None]] = set()
    for d in letters:
        if d.original_topic is None:
            unroutable.append(d)
            continue
        if d.original_topic not in allowed:
            refused.append(d)
            continue
        headers = retry_headers(f"{DLQ_TOPIC}:{d.partition}:{d.offset}")
        value = d.value
        if d.original_topic == gate and d.stage in ITEM_STAGES:
            # The gate dead-letters the change it was walking (a `Pending`, facts learned so
            # far included); on its topic that travels as a gate message. The gate re-plans
            # it and forwards it to the key of its next step.
            try:
                value = encode_gate(PendingMsg(item=Pending.model_validate_json(d.value or b"")))
            except ValueError:
                unroutable.append(d)
                continue
        identity = (d.original_topic, d.key, d.value)
        if identity in seen:
            repeats.append(d)
            continue
        seen.add(identity)
        records.append((d.original_topic, d.key, value, headers))
    return RetryPlan(records, unroutable, repeats, refused)


def read_dead_letters(config: KafkaConfig, *, topic: str = DLQ_TOPIC,
                      timeout: float = 10.0) -> list[DeadLetter]:
    """Every dead letter currently on the DLQ, oldest failure first (newest last)."""
    require_topic(config, topic, timeout)
    with reaching(config):
        letters = [dead_letter(r) for r in read_records(config, topic, timeout=timeout)]
    return sorted(letters, key=lambda d: (d.ts_ms or 0, d.partition, d.offset))


def redrive(config: KafkaConfig, plan: list[OutRecord], *, timeout: float = 30.0,
            on_delivered: Callable[[], None] | None = None) -> int:
    """Produce the plan (idempotent producer) and wait until Kafka acknowledged every record;
    ``on_delivered`` runs once per acknowledged record. Returns how many were re-driven."""
    return produce_records(config, plan, timeout=timeout, on_delivered=on_delivered)
