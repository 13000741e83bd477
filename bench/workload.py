"""Synthetic but realistic CDC workloads for the benchmarks.

Projects in one legal entity, each updated several times with increasing versions, preceded by the
legal entity's own change event so the processor can resolve the owning company lookup (P1).
Actuals (`bench.registry`), each row referencing six pre-filled lookup rows, updated the same
way (P1b): the same number of changes with six lookups instead of one. Probe projects, one
change each, whose commands tell when a restarted worker is processing again (P6).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Iterator, Mapping

from confluent_kafka import Producer

from bench.registry import ACTUALS_TABLE, LOOKUP_TABLES
from topics import ChangeEvent, cdc_topic, encode, encode_key

COMPANY_ID = "0b1c1d2e-0000-4000-8000-00000000c0de"


def _event(table: str, row: Mapping[str, object], version: int, op: str = "u") -> ChangeEvent:
    now = int(time.time() * 1000)
    return ChangeEvent.model_validate({
        "before": None, "after": row, "op": op, "ts_ms": now,
        "source": {"system": "dataverse", "table": table, "version": str(version), "ts_ms": now,
                   "company": "usmf", "txid": str(uuid.uuid4()), "origin": "bench-user"},
    })


def company_event() -> tuple[str, str, ChangeEvent]:
    """(topic, key, event) of the legal entity every bench project belongs to: produced first,
    so the processor can resolve the projects' owning company lookup."""
    company = {"cdm_companyid": COMPANY_ID, "cdm_companycode": "usmf", "cdm_name": "Contoso USA",
               "accountingcurrency": "USD", "statecode": 0}
    return cdc_topic("dataverse", "cdm_companies"), COMPANY_ID, _event("cdm_companies", company, 1, "c")


def _project(pid: str, number: str, subject: str, version: int, op: str) -> tuple[str, str, ChangeEvent]:
    row = {"msdyn_projectid": pid, "msdyn_projectnumber": number, "msdyn_subject": subject,
           "_msdyn_owningcompany_value": COMPANY_ID, "_msdyn_customer_value": None,
           "msdyn_scheduledstart": "2026-12-01", "msdyn_finish": "2027-03-31",
           "statecode": 0, "versionnumber": version}
    return cdc_topic("dataverse", "msdyn_projects"), pid, _event("msdyn_projects", row, version, op)


def project_events(records: int, updates: int) -> Iterator[tuple[str, str, ChangeEvent]]:
    """(topic, key, event): the company, then `updates` versions of each of `records` projects."""
    yield company_event()
    version = 1
    for round_ in range(updates):
        for i in range(records):
            version += 1
            yield _project(str(uuid.UUID(int=i + 1)), f"B-{i:06d}", f"Bench project {i} rev {round_}",
                           version, "c" if round_ == 0 else "u")


# Newer than any version `project_events` gives (one per change, counted from 2).
PROBE_VERSION = 10**9


def probe_project(n: int) -> tuple[str, str, ChangeEvent]:
    """(topic, key, event): the creation of probe project ``n``, with an id and a number of its own
    (``PROBE-<n>``, never a `project_events` one) and a version newer than any before: its
    command on ``sync.commands.finance`` says the worker is processing (`bench.restart`)."""
    return _project(probe_id(n), probe_number(n), f"Bench probe {n}", PROBE_VERSION + n, "c")


def probe_id(n: int) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_OID, f"dualwrite-bench-probe:{n}"))


def probe_number(n: int) -> str:
    return f"PROBE-{n:04d}"


def _lookup_rows(name: str, count: int) -> Iterator[tuple[str, dict[str, object]]]:
    """(id, row) of `count` rows of one lookup table of `bench.registry`."""
    table, pk, column = LOOKUP_TABLES[name]
    for i in range(count):
        rid = COMPANY_ID if name == "company" else str(uuid.uuid5(uuid.NAMESPACE_OID, f"{table}:{i}"))
        yield rid, {pk: rid, column: "usmf" if name == "company" else f"{name.upper()}-{i:04d}",
                    "statecode": 0}


# Rows per lookup table: a company, a few dozen projects and their tasks, the reference data.
LOOKUP_COUNTS = {"company": 1, "project": 50, "task": 200, "resource": 40, "category": 12, "role": 8}


def actuals_events(records: int, updates: int) -> Iterator[tuple[str, str, ChangeEvent]]:
    """(topic, key, event): the lookup rows, then `updates` versions of each of `records` actuals
    whose six lookup columns each name one of those rows."""
    ids: dict[str, list[str]] = {}
    for name, count in LOOKUP_COUNTS.items():
        table = LOOKUP_TABLES[name][0]
        ids[name] = []
        for rid, ref_row in _lookup_rows(name, count):
            ids[name].append(rid)
            yield cdc_topic("dataverse", table), rid, _event(table, ref_row, 1, "c")
    version = 1
    for round_ in range(updates):
        for i in range(records):
            version += 1
            aid = str(uuid.UUID(int=i + 1))
            row: dict[str, object] = {"msdyn_actualid": aid, "msdyn_transactionnumber": f"A-{i:07d}",
                                      "msdyn_quantity": 1 + round_, "msdyn_documentdate": "2026-12-01",
                                      "statecode": 0, "versionnumber": version}
            for name, refs in ids.items():
                row[f"_msdyn_{name}_value"] = refs[i % len(refs)]
            yield (cdc_topic("dataverse", ACTUALS_TABLE), aid,
                   _event(ACTUALS_TABLE, row, version, "c" if round_ == 0 else "u"))


def produce(client: Mapping[str, str], events: Iterable[tuple[str, str, ChangeEvent]]) -> int:
    return produce_records(client, ((topic, encode_key(key), encode(event), None)
                                    for topic, key, event in events))


def produce_records(client: Mapping[str, str], records: Iterable[tuple[str, bytes, bytes, int | None]]) -> int:
    """(topic, key, value, partition or None for the key's) records, batched, all acknowledged."""
    producer = Producer({**client, "enable.idempotence": True, "linger.ms": 20,
                         "batch.num.messages": 10000})
    count = 0
    for topic, key, value, partition in records:
        while True:
            try:  # partition -1: librdkafka's "unassigned", the key's partition
                producer.produce(topic, key=key, value=value, partition=-1 if partition is None else partition)
                break
            except BufferError:
                producer.poll(0.1)
        count += 1
    if producer.flush(120) != 0:
        raise RuntimeError("benchmark workload not fully acknowledged by Kafka")
    return count
