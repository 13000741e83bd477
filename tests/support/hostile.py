"""Malformed and hostile CDC records for the live fuzz run, generated from one seed.

Each `Hostile` record says what the pipeline must make of it: ``dlq`` (one dead letter, no
row), ``applied`` (one row with the given fields, no dead letter) or ``either`` (exactly one of
the two: a record that is well-formed but cannot be forwarded as it is, such as a row nested
deeper than a JSON encoder allows in a column no map reads). The classes follow issue 8:
random bytes, truncated JSON, deep nesting, huge values, wrong types in the envelope and in the
``after`` image, bad versions, unknown ops, missing keys, empty values and hostile key values.
The counts are fixed so a run is the same run every time; only ``random.Random(seed)`` draws.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

__all__ = ["CLASS_COUNTS", "Context", "Hostile", "generate"]

Expect = Literal["dlq", "applied", "either"]

# Records per class (10,000 in all). Classes whose records reach a map are kept below the
# worker's pause threshold (100 rejections of one map in a row) and the sink's flood limit.
CLASS_COUNTS: dict[str, int] = {
    "random_bytes": 2000,
    "truncated_json": 2000,
    "wrong_type_envelope": 1600,
    "unknown_op": 1000,
    "missing_key": 1000,
    "empty_value": 1000,
    "bad_version": 900,
    "deep_nesting": 40,
    "huge_value": 8,
    "wrong_type_after": 140,
    "hostile_key_cdc": 12,
    "hostile_record_id": 300,
}

HUGE = 900 * 1024  # under the test broker's message.max.bytes (1 MiB), over every column size
OVERSIZE = 5 * 1024 * 1024  # over it: Kafka itself refuses the record


@dataclass(frozen=True)
class Context:
    """Real ids of the running tenant that valid-shaped records refer to."""

    topics: tuple[str, ...]  # every CDC topic the worker reads
    company_id: str  # Dataverse cdm_companyid of the company (usmf)
    customer_id: str  # Dataverse accountid of customer US-001
    project_id: str  # msdyn_projectid of a project that exists on both sides
    now_ms: int


@dataclass
class Hostile:
    cls: str
    what: str  # the variant, for the report
    topic: str
    key: bytes | None
    value: bytes | None
    expect: Expect
    source_id: str | None = None  # the CDC key id when the key is well-formed
    finance_project: str | None = None  # ProjectId in usmf this record names, if any
    fields: dict[str, Any] = field(default_factory=dict)  # expected Finance fields if applied


def _key(record_id: Any) -> bytes:
    return orjson.dumps({"id": record_id})


def _uid(rng: random.Random) -> str:
    return "%08x-%04x-4%03x-8%03x-%012x" % (rng.getrandbits(32), rng.getrandbits(16),  # noqa: UP031
                                            rng.getrandbits(12), rng.getrandbits(12),
                                            rng.getrandbits(48))


def _version(rng: random.Random) -> str:
    return str(rng.randrange(10**12, 10**15))


class _Gen:
    def __init__(self, rng: random.Random, ctx: Context) -> None:
        self.rng = rng
        self.ctx = ctx
        self.counter = 0

    def number(self, tag: str) -> str:
        self.counter += 1
        return f"FZ{tag}-{self.counter:05d}"

    def source(self, topic: str) -> dict[str, Any]:
        system, _, table = topic.split(".", 2)
        return {"system": system, "table": table, "version": _version(self.rng),
                "ts_ms": self.ctx.now_ms, "snapshot": "false", "company": None, "txid": None,
                "origin": "fuzz"}

    def project_row(self, rid: str, number: str) -> dict[str, Any]:
        return {"msdyn_projectid": rid, "msdyn_projectnumber": number,
                "msdyn_subject": f"Fuzz {number}", "statecode": 0,
                "_msdyn_owningcompany_value": self.ctx.company_id,
                "_msdyn_customer_value": self.ctx.customer_id,
                "msdyn_scheduledstart": "2026-12-01", "msdyn_finish": "2027-06-30",
                "versionnumber": int(_version(self.rng))}

    def task_row(self, rid: str) -> dict[str, Any]:
        return {"msdyn_projecttaskid": rid, "_msdyn_project_value": self.ctx.project_id,
                "msdyn_wbsid": f"9{self.rng.randrange(10**6)}", "msdyn_subject": "Fuzz task",
                "_msdyn_parenttask_value": None, "msdyn_isleaf": True}

    def customer_row(self, account: str) -> dict[str, Any]:
        return {"dataAreaId": "usmf", "CustomerAccount": account, "Name": f"Fuzz {account}",
                "CustomerGroupId": "30", "SalesCurrencyCode": "USD", "PartyNumber": None,
                "RecId": self.rng.randrange(10**9, 10**10), "RecVersion": 1}

    def row_for(self, topic: str, rid: str) -> dict[str, Any]:
        """A plausible row of any worker topic (tables without a map get a generic one)."""
        if topic.endswith(".msdyn_projects"):
            return self.project_row(rid, self.number("X"))
        if topic.endswith(".msdyn_projecttasks"):
            return self.task_row(rid)
        if topic.endswith(".customersv3"):
            return self.customer_row(self.number("C"))
        return {"id": rid, "name": "fuzz"}

    def event(self, topic: str, rid: str, row: dict[str, Any] | None = None) -> dict[str, Any]:
        return {"before": None, "after": row if row is not None else self.row_for(topic, rid),
                "op": "c", "ts_ms": self.ctx.now_ms, "source": self.source(topic),
                "transaction": None}

    def topic(self) -> str:
        return self.rng.choice(self.ctx.topics)

    def bad(self, cls: str, what: str, topic: str, key: bytes | None, value: bytes | None,
            source_id: str | None = None) -> Hostile:
        return Hostile(cls, what, topic, key, value, "dlq", source_id)


def _nested(depth: int, leaf: Any = 1) -> Any:
    value = leaf
    for _ in range(depth):
        value = {"a": value}
    return value


# -- the classes ---------------------------------------------------------------------------

def _random_bytes(g: _Gen, n: int) -> Iterator[Hostile]:
    for i in range(n):
        topic = g.topic()
        rid = _uid(g.rng)
        if i % 4 == 3:  # garbage key, good value
            yield g.bad("random_bytes", "key", topic, g.rng.randbytes(g.rng.randint(1, 64)),
                        orjson.dumps(g.event(topic, rid)))
        else:
            yield g.bad("random_bytes", "value", topic, _key(rid),
                        g.rng.randbytes(g.rng.randint(1, 2048)), rid)


def _truncated_json(g: _Gen, n: int) -> Iterator[Hostile]:
    for i in range(n):
        topic = g.topic()
        rid = _uid(g.rng)
        value = orjson.dumps(g.event(topic, rid))
        if i % 5 == 4:
            key = _key(rid)
            yield g.bad("truncated_json", "key", topic, key[:g.rng.randint(1, len(key) - 1)], value)
        else:
            yield g.bad("truncated_json", "value", topic, _key(rid),
                        value[:g.rng.randint(1, len(value) - 1)], rid)


_ENVELOPE_BAD: dict[str, tuple[Any, ...]] = {
    "before": ([1], "x", 5),
    "after": ([1], "x", 5, None),
    "ts_ms": ([1], {"a": 1}, "ten", -5, 1.5),
    "source": ([1], "x", 1),
    "source.system": ("sap", 1, []),
    "source.table": ("", 1, []),
    "source.version": (1, [], {}),
    "source.ts_ms": ([1], "ten", -5, 1.5),
    "source.snapshot": ("maybe", 1, []),
    "source.company": (1, [], {}),
    "source.txid": (1, [], {}),
    "source.origin": (1, [], {}),
    "transaction": ([], "x", 1),
    "transaction.id": (1, [], None),
    "transaction.total_order": (0, "x", [], 1.5),
    "transaction.data_collection_order": (0, "x", {}),
    "transaction.event_count": (0, "x", []),
    "unknown_field": (1,),
}


def _set_path(doc: dict[str, Any], path: str, value: Any) -> None:
    if path == "unknown_field":
        doc["surprise"] = value
        return
    head, _, rest = path.partition(".")
    if rest:
        if head == "transaction" and doc.get("transaction") is None:
            doc["transaction"] = {"id": "tx-1", "total_order": 1, "data_collection_order": 1,
                                  "event_count": 1}
        doc[head][rest] = value
    else:
        doc[head] = value


def _wrong_type_envelope(g: _Gen, n: int) -> Iterator[Hostile]:
    variants = [(p, v) for p, vs in _ENVELOPE_BAD.items() for v in vs]
    for i in range(n):
        path, bad = variants[i % len(variants)]
        topic = g.topic()
        rid = _uid(g.rng)
        doc = g.event(topic, rid)
        _set_path(doc, path, bad)
        yield g.bad("wrong_type_envelope", f"{path}={bad!r}", topic, _key(rid), orjson.dumps(doc), rid)


_OPS = ("x", "C", "delete", "", "cc", " c", "r ", "ü", "truncate", "m", "U", "dd")


def _unknown_op(g: _Gen, n: int) -> Iterator[Hostile]:
    for i in range(n):
        topic = g.topic()
        rid = _uid(g.rng)
        doc = g.event(topic, rid)
        doc["op"] = _OPS[i % len(_OPS)]
        yield g.bad("unknown_op", f"op={doc['op']!r}", topic, _key(rid), orjson.dumps(doc), rid)


_BAD_KEYS: tuple[bytes | None, ...] = (None, b"{}", b'{"id": ""}', b'{"id": null}', b'{"id": 5}',
                                       b'{"id": ["a"]}', b'{"idx": "a"}', b"[]", b'"id"',
                                       b'{"id": "a", "extra": 1}', b"", b"null")
_ENVELOPE_KEYS = ("op", "source", "ts_ms", "source.version", "source.system", "source.table",
                  "source.ts_ms")


def _missing_key(g: _Gen, n: int) -> Iterator[Hostile]:
    for i in range(n):
        topic = g.topic()
        rid = _uid(g.rng)
        doc = g.event(topic, rid)
        if i % 2 == 0:
            key = _BAD_KEYS[(i // 2) % len(_BAD_KEYS)]
            yield g.bad("missing_key", f"record key {key!r}", topic, key, orjson.dumps(doc))
            continue
        gone = _ENVELOPE_KEYS[(i // 2) % len(_ENVELOPE_KEYS)]
        head, _, rest = gone.partition(".")
        del (doc[head] if rest else doc)[rest or head]
        yield g.bad("missing_key", f"no {gone}", topic, _key(rid), orjson.dumps(doc), rid)


_EMPTY = (b"", b"{}", b"null", b'""', b"[]", b" ", b"\x00", b"\n", b"0", b"false")


def _empty_value(g: _Gen, n: int) -> Iterator[Hostile]:
    for i in range(n):
        topic = g.topic()
        rid = _uid(g.rng)
        value = _EMPTY[i % len(_EMPTY)]
        yield g.bad("empty_value", f"value {value!r}", topic, _key(rid), value, rid)


_VERSIONS = (str(2**63), str(2**64), "9" * 20, "1" * 21, "١٢٣", "\uff11\uff12\uff13", "12٣", "-1", "1e5",
             "0x1F", "", "12.5", "+7")


def _bad_version(g: _Gen, n: int) -> Iterator[Hostile]:
    for i in range(n):
        topic = g.topic()
        rid = _uid(g.rng)
        doc = g.event(topic, rid)
        version = _VERSIONS[i % len(_VERSIONS)]
        doc["source"]["version"] = version
        h = g.bad("bad_version", f"version {version!r}", topic, _key(rid), orjson.dumps(doc), rid)
        if topic.endswith(".msdyn_projects"):
            h.finance_project = doc["after"]["msdyn_projectnumber"]  # must never become a row
        yield h


def _deep_nesting(g: _Gen, n: int) -> Iterator[Hostile]:
    projects = next(t for t in g.ctx.topics if t.endswith(".msdyn_projects"))
    for i in range(n):
        rid = _uid(g.rng)
        kind = i % 4
        if kind == 0:
            topic = g.topic()
            yield g.bad("deep_nesting", "value 10,000 levels", topic, _key(rid),
                        b"[" * 10_000 + b"]" * 10_000, rid)
        elif kind == 1:
            topic = g.topic()
            yield g.bad("deep_nesting", "key 10,000 levels", topic,
                        b'{"id":' * 10_000 + b'"x"' + b"}" * 10_000,
                        orjson.dumps(g.event(topic, rid)))
        else:
            number = g.number("N")
            row = g.project_row(rid, number)
            if kind == 2:  # a mapped column: a dict where the target wants a string
                row["msdyn_subject"] = _nested(300)
                yield Hostile("deep_nesting", "msdyn_subject 300 levels", projects, _key(rid),
                              _dumps_deep(g.event(projects, rid, row)), "dlq", rid, number)
            else:  # a column no map reads, deeper than orjson writes (254)
                row["msdyn_description"] = _nested(300)
                yield Hostile("deep_nesting", "unmapped column 300 levels", projects, _key(rid),
                              _dumps_deep(g.event(projects, rid, row)), "either", rid, number,
                              _project_fields(row))


def _dumps_deep(doc: Any) -> bytes:
    """orjson refuses to write more than 254 levels; the stdlib writes any depth."""
    import json
    import sys

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 5000))
    try:
        return json.dumps(doc, ensure_ascii=False).encode()
    finally:
        sys.setrecursionlimit(limit)


def _project_fields(row: dict[str, Any]) -> dict[str, Any]:
    return {"ProjectName": row["msdyn_subject"], "CustomerAccountNumber": "US-001",
            "ProjectStage": "InProcess", "IntegrationSourceDataId": row["msdyn_projectid"]}


def _huge_value(g: _Gen, n: int) -> Iterator[Hostile]:
    projects = next(t for t in g.ctx.topics if t.endswith(".msdyn_projects"))
    for i in range(n):
        rid = _uid(g.rng)
        number = g.number("H")
        row = g.project_row(rid, number)
        kind = i % 4
        if kind == 0:  # over Kafka's limit: refused at produce (counted, never in the pipeline)
            row["msdyn_subject"] = "x" * OVERSIZE
            yield Hostile("huge_value", "5 MB subject (over message.max.bytes)", projects,
                          _key(rid), orjson.dumps(g.event(projects, rid, row)), "dlq", rid, number)
        elif kind == 1:  # a mapped column far over the target's size
            row["msdyn_subject"] = "ß" * (HUGE // 2)
            yield Hostile("huge_value", "900 KB subject", projects, _key(rid),
                          orjson.dumps(g.event(projects, rid, row)), "dlq", rid, number)
        elif kind == 2:  # a column no map reads
            row["msdyn_description"] = "y" * HUGE
            yield Hostile("huge_value", "900 KB unmapped column", projects, _key(rid),
                          orjson.dumps(g.event(projects, rid, row)), "either", rid, number,
                          _project_fields(row))
        else:  # a 900 KB record key
            big = rid + "k" * (HUGE - len(rid))  # one record each: a shared id would be a duplicate
            row = g.project_row(rid, number)
            yield Hostile("huge_value", "900 KB record key", projects, _key(big),
                          orjson.dumps(g.event(projects, big, row)), "either", big, number,
                          _project_fields(row))


# (column, bad value) per map source table; every one must end as a dead letter.
_AFTER_BAD: dict[str, tuple[tuple[str, Any], ...]] = {
    "msdyn_projects": (("msdyn_projectnumber", {"a": 1}), ("msdyn_projectnumber", ["FZ"]),
                       ("msdyn_projectnumber", 12345), ("msdyn_subject", {"x": 1}),
                       ("msdyn_subject", [1, 2]), ("statecode", [0]), ("statecode", {"v": 0}),
                       ("statecode", "active"), ("statecode", 7),
                       ("msdyn_scheduledstart", [1]), ("msdyn_scheduledstart", "not-a-date"),
                       ("msdyn_finish", {"d": 1}), ("_msdyn_owningcompany_value", ["x"]),
                       ("_msdyn_owningcompany_value", {"id": 1}),
                       ("_msdyn_customer_value", [1]), ("_msdyn_customer_value", {"id": 1}),
                       ("msdyn_projectid", [1]), ("msdyn_projectid", {"a": 1})),
    "msdyn_projecttasks": (("msdyn_wbsid", {"a": 1}), ("msdyn_wbsid", [1]), ("msdyn_wbsid", 7),
                           ("msdyn_subject", {"a": 1}), ("msdyn_subject", [1]),
                           ("_msdyn_project_value", [1]), ("_msdyn_project_value", {"a": 1}),
                           ("_msdyn_parenttask_value", [1]), ("_msdyn_parenttask_value", {"a": 1})),
    "customersv3": (("CustomerAccount", {"a": 1}), ("CustomerAccount", [1]),
                    ("CustomerAccount", 42), ("Name", {"a": 1}), ("Name", [1]),
                    ("CustomerGroupId", [1]), ("SalesCurrencyCode", {"a": 1}),
                    ("dataAreaId", ["usmf"]), ("dataAreaId", {"a": 1})),
}


def _wrong_type_after(g: _Gen, n: int) -> Iterator[Hostile]:
    share = {"msdyn_projects": 0.45, "msdyn_projecttasks": 0.3, "customersv3": 0.25}
    for table, part in share.items():
        topic = next(t for t in g.ctx.topics if t.endswith("." + table))
        bad = _AFTER_BAD[table]
        for i in range(round(n * part)):
            column, value = bad[i % len(bad)]
            rid = _uid(g.rng)
            row = g.row_for(topic, rid)
            row[column] = value
            h = g.bad("wrong_type_after", f"{table}.{column}={value!r}", topic, _key(rid),
                      orjson.dumps(g.event(topic, rid, row)), rid)
            if table == "msdyn_projects" and isinstance(row["msdyn_projectnumber"], str):
                h.finance_project = row["msdyn_projectnumber"]
            yield h


# Hostile project numbers sent straight to the CDC topic: the sink must refuse each key.
_CDC_KEYS = ("FZ\r\nMSCRM.CallerID: x", "FZ\nX-A: b", "FZ\rb", "FZ\tT", "FZ\x00N", "FZ\x1bE",
             "K" * 2000, "Ł" * 2000, "FZ\x0bV", "FZ\x7fD", "FZ\x85N", "FZ" + "%" * 1998)


def _hostile_key_cdc(g: _Gen, n: int) -> Iterator[Hostile]:
    projects = next(t for t in g.ctx.topics if t.endswith(".msdyn_projects"))
    for i in range(n):
        number = _CDC_KEYS[i % len(_CDC_KEYS)]
        rid = _uid(g.rng)
        yield Hostile("hostile_key_cdc", f"project number {number[:24]!r} ({len(number)} chars)",
                      projects, _key(rid), orjson.dumps(g.event(projects, rid, g.project_row(rid, number))),
                      "dlq", rid, number)


# Hostile CDC record ids (the source's primary key) on otherwise good projects: applied.
_IDS = ("a'b", "a''b", "%2F", "a%2Db", "a#b", "a?x=1", "a/b", "a\\b", "Łódź", "€", "日本",
        "a\r\nb", "a\x00b", "x" * 2000, " ", "(')", "a,b=c", "🙂")


def _hostile_record_id(g: _Gen, n: int) -> Iterator[Hostile]:
    projects = next(t for t in g.ctx.topics if t.endswith(".msdyn_projects"))
    for i in range(n):
        rid = f"{_IDS[i % len(_IDS)]}-{i}"
        number = g.number("I")
        row = g.project_row(_uid(g.rng), number)  # the row's own id column stays a GUID
        yield Hostile("hostile_record_id", f"record id {_IDS[i % len(_IDS)][:12]!r}", projects,
                      _key(rid), orjson.dumps(g.event(projects, rid, row)), "applied", rid, number,
                      _project_fields(row))


_CLASSES: dict[str, Callable[[_Gen, int], Iterator[Hostile]]] = {
    "random_bytes": _random_bytes,
    "truncated_json": _truncated_json,
    "wrong_type_envelope": _wrong_type_envelope,
    "unknown_op": _unknown_op,
    "missing_key": _missing_key,
    "empty_value": _empty_value,
    "bad_version": _bad_version,
    "deep_nesting": _deep_nesting,
    "huge_value": _huge_value,
    "wrong_type_after": _wrong_type_after,
    "hostile_key_cdc": _hostile_key_cdc,
    "hostile_record_id": _hostile_record_id,
}


def generate(seed: int, ctx: Context) -> list[Hostile]:
    """Every record of every class, shuffled so the classes arrive mixed."""
    rng = random.Random(seed)
    g = _Gen(rng, ctx)
    out = [h for cls, count in CLASS_COUNTS.items() for h in _CLASSES[cls](g, count)]
    rng.shuffle(out)
    return out
