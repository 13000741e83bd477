"""Which record each dead letter belongs to, and what became of every record of a fuzz run.

A dead letter names its origin by ``dlq.original.topic/partition/offset``. For a record the test
produced, that position is known from the delivery report. A record that failed later (at the
sink, whose dead letter names the command's position) or that entered the pipeline through an
API is found by the source id the command carries or by its CDC key, and failing that by the
target key it addressed.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import orjson

from connectors.common.kafka import KafkaRecord
from topics import DecodeError, decode_command, decode_key, read_headers

__all__ = ["Ledger", "Tracked", "table", "target_value"]

REASON_HEADERS = ("dlq.stage", "dlq.error.class", "dlq.error.message")
VERSION = "source.version"  # added to a dead letter's headers here: the change it carries


def _origin(h: dict[str, str]) -> str:
    return f"{h.get('dlq.original.topic')}:{h.get('dlq.original.partition')}:{h.get('dlq.original.offset')}"


def _describe(letters: list[dict[str, str]]) -> str:
    return "; ".join(f"[{h.get('dlq.stage')} {h.get('dlq.error.class')} from {_origin(h)} v{h.get(VERSION)}: "
                     f"{h.get('dlq.error.message', '')[:100]}]" for h in letters)


@dataclass
class Tracked:
    """One record under test and what it must become (``dlq``, ``applied`` or ``either``)."""

    cls: str
    what: str
    expect: str
    source_id: str | None = None
    target: tuple[str, str] | None = None  # (entity, `target_value`): ("ProjectsV2", "FZ-1")
    fields: dict[str, Any] = field(default_factory=dict)
    position: tuple[str, int, int] | None = None  # where the test produced it
    refused: str | None = None  # refused on entry (by Kafka or by the API): never in the pipeline
    letters: list[dict[str, str]] = field(default_factory=list)
    row: dict[str, Any] | None = None

    @property
    def applied(self) -> bool:
        return self.row is not None and all(self.row.get(k) == v for k, v in self.fields.items())

    def problem(self) -> str | None:
        """Why this record's end state is wrong, or None."""
        if self.refused is not None:
            return None
        letters, row = len(self.letters), self.row is not None
        if self.expect == "dlq":
            # A record the test produced is one change: one dead letter. One made through an
            # API may be several changes (versions): one dead letter each, none twice.
            changes = {(h.get(VERSION) or _origin(h)) for h in self.letters}
            once = letters == 1 if self.position is not None else 0 < letters == len(changes)
            if not once:
                return f"{letters} dead letters (want one per change): {_describe(self.letters)}"
            if row:
                return f"dead-lettered but a row exists: {self.row}"
            missing = [h for h in REASON_HEADERS if not self.letters[0].get(h)]
            return f"dead letter without {missing}" if missing else None
        if self.expect == "applied" or (self.expect == "either" and not letters):
            if letters:
                return f"dead-lettered: {_describe(self.letters)}"
            if not row:
                return "neither applied nor dead-lettered (lost)"
            if not self.applied:
                wrong = {k: (v, self.row.get(k)) for k, v in self.fields.items()  # type: ignore[union-attr]
                         if self.row.get(k) != v}  # type: ignore[union-attr]
                return f"applied with wrong values {wrong}"
            return None
        # either, with dead letters
        if letters != 1 or row:
            return f"{letters} dead letters and row={row} (want exactly one outcome): " \
                   f"{_describe(self.letters)}"
        return None


# Key fields that only say which company: the rest of a key names the row within it.
_COMPANY_FIELDS = ("dataAreaId", "_msdyn_company_value")


def target_value(key: dict[str, Any]) -> str:
    """The row a target key names within its company: ``ProjectId`` or ``ProjectId/Task`` or
    ``accountnumber`` (key fields in name order, joined by ``/``)."""
    return "/".join(str(key[k]) for k in sorted(key) if k not in _COMPANY_FIELDS)


def _source(value: bytes | None) -> tuple[str, str] | None:
    """The source record id and version a command or a gate message carries (``...source``):
    the gate dead-letters the gate message it was handed, the sink the command."""
    try:
        doc = orjson.loads(value or b"")
    except orjson.JSONDecodeError:
        return None
    todo: list[tuple[Any, int]] = [(doc, 0)]
    while todo:
        node, depth = todo.pop()
        if not isinstance(node, dict) or depth > 4:
            continue
        source = node.get("source")
        if isinstance(source, dict) and isinstance(source.get("id"), str) and "system" in source:
            return str(source["id"]), str(source.get("version"))
        todo.extend((v, depth + 1) for v in node.values() if isinstance(v, dict | list))
        for v in node.values():
            if isinstance(v, list):
                todo.extend((x, depth + 1) for x in v[:50])
    return None


class Ledger:
    """Every tracked record, indexed the ways a dead letter can name it."""

    def __init__(self) -> None:
        self.records: list[Tracked] = []
        self._by_position: dict[tuple[str, int, int], Tracked] = {}
        self._by_source: dict[str, Tracked] = {}
        self._by_target: dict[tuple[str, str], Tracked] = {}
        self.unattributed: list[dict[str, str]] = []

    def add(self, record: Tracked) -> Tracked:
        self.records.append(record)
        if record.source_id is not None:
            self._by_source.setdefault(record.source_id, record)
        if record.target is not None:
            self._by_target.setdefault(record.target, record)
        return record

    def produced(self, record: Tracked, topic: str, partition: int, offset: int) -> None:
        record.position = (topic, partition, offset)
        self._by_position[record.position] = record

    def _owner(self, letter: KafkaRecord, headers: dict[str, str]) -> Tracked | None:
        try:
            pos = (headers["dlq.original.topic"], int(headers["dlq.original.partition"]),
                   int(headers["dlq.original.offset"]))
        except (KeyError, ValueError):
            pos = None
        if pos is not None and pos in self._by_position:
            return self._by_position[pos]
        source = _source(letter.value)
        if source is not None and source[0] in self._by_source:
            return self._by_source[source[0]]
        try:
            command = decode_command(letter.value)
        except DecodeError:
            command = None
        if command is not None:
            return self._by_target.get((command.entity, target_value(command.key)))
        try:
            return self._by_source.get(decode_key(letter.key).id)
        except DecodeError:
            return None

    def attribute(self, letters: list[KafkaRecord]) -> None:
        """Give every dead letter to the record it names (call once, with all of them)."""
        for r in self.records:
            r.letters.clear()
        self.unattributed.clear()
        for letter in letters:
            headers = read_headers(letter.headers)
            source = _source(letter.value)
            headers[VERSION] = source[1] if source is not None else ""
            owner = self._owner(letter, headers)
            if owner is None:
                self.unattributed.append(headers)
            else:
                owner.letters.append(headers)

    def rows(self, entity: str, rows: dict[str, dict[str, Any]]) -> None:
        """Target rows of ``entity`` by key value; records naming one of them get it."""
        for r in self.records:
            if r.target is not None and r.target[0] == entity:
                r.row = rows.get(r.target[1])

    def problems(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = defaultdict(list)
        for r in self.records:
            problem = r.problem()
            if problem is not None:
                out[r.cls].append(f"{r.what}: {problem}")
        return dict(out)

    def summary(self, restarts: dict[str, int]) -> dict[str, Any]:
        """Per class: records sent, refused on entry, dead letters, applied, problems."""
        classes: dict[str, Counter[str]] = defaultdict(Counter)
        stages: dict[str, Counter[str]] = defaultdict(Counter)
        for r in self.records:
            c = classes[r.cls]
            if r.refused is not None:
                c["refused"] += 1
                continue
            c["sent"] += 1
            c["dead_letters"] += len(r.letters)
            c["applied"] += int(r.row is not None)
            c["problems"] += int(r.problem() is not None)
            for h in r.letters:
                stages[r.cls][h.get("dlq.stage", "?")] += 1
        return {"classes": {k: {"sent": v["sent"], "refused": v["refused"],
                                "dead_letters": v["dead_letters"], "applied": v["applied"],
                                "problems": v["problems"], "dlq_stages": dict(stages[k])}
                            for k, v in sorted(classes.items())},
                "unattributed_dead_letters": len(self.unattributed),
                "restarts": restarts}


def table(summary: dict[str, Any]) -> str:
    """The summary as a fixed-width table for the test's output."""
    lines = [f"{'class':<22}{'sent':>7}{'refused':>9}{'dlq':>7}{'applied':>9}{'problems':>10}  stages"]
    total: Counter[str] = Counter()
    for name, c in summary["classes"].items():
        lines.append(f"{name:<22}{c['sent']:>7}{c['refused']:>9}{c['dead_letters']:>7}"
                     f"{c['applied']:>9}{c['problems']:>10}  {orjson.dumps(c['dlq_stages']).decode()}")
        total.update({k: c[k] for k in ("sent", "refused", "dead_letters", "applied", "problems")})
    lines.append(f"{'total':<22}{total['sent']:>7}{total['refused']:>9}{total['dead_letters']:>7}"
                 f"{total['applied']:>9}{total['problems']:>10}")
    lines.append(f"unattributed dead letters: {summary['unattributed_dead_letters']}")
    lines.append(f"restarts: {summary['restarts']}")
    return "\n".join(lines)
