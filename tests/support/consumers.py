"""Reading a run's topics with consumers that are not the pipeline's own (issue 13).

Used by the end-to-end module on the stack it already runs (one stack, not two): the per-table
schemas `dualwrite topics schema` prints from the emulators' ``$metadata``, a JSON Schema
validator over every CDC record, Kafka's own console consumer (the tools jar on the broker's
classpath), Flink SQL with the `debezium-json` format (`dualwrite.flink`, a local mini-cluster)
and `dualwrite topics tail`.
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import orjson
from confluent_kafka import Consumer, TopicPartition
from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import best_match

from dualwrite.flink import materialise_command
from dualwrite.kafka import CONSOLE_CONSUMER, tool_command
from dualwrite.stack import Stack
from streams.maps import default_registry
from tests.support.kafka import end_offset
from tests.support.pipeline import read_topic
from topics import cdc_topic

Record = tuple[Any, Any]  # (key, value) as JSON; a tombstone's value is None


def cli(stack: Stack, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[bytes]:
    """`dualwrite ARGS` as a user runs it against the stack."""
    return subprocess.run([sys.executable, "-m", "dualwrite", *args], env={**os.environ, **stack.env},
                          capture_output=True, timeout=timeout, check=False)


def printed_schemas(stack: Stack) -> dict[str, Any]:
    """`dualwrite topics schema`, every table found in the APIs' ``$metadata``."""
    proc = cli(stack, "topics", "schema")
    assert proc.returncode == 0, proc.stderr.decode()
    assert b"warning" not in proc.stderr, proc.stderr.decode()
    return dict(orjson.loads(proc.stdout))


def cdc_topics() -> list[str]:
    return [cdc_topic(system, table) for system, table in default_registry().cdc_tables()]  # type: ignore[arg-type]


def validator(schema: dict[str, Any]) -> Draft202012Validator:
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=FormatChecker())


def validate_cdc_topics(stack: Stack, schemas: dict[str, Any]) -> dict[str, int]:
    """Check every record of every CDC topic against its topic's key and value schema (each
    typed by its table's columns); the count of records checked per op (and tombstones)."""
    bootstrap = stack.env["DUALWRITE_KAFKA__BOOTSTRAP_SERVERS"]
    ops: dict[str, int] = {}
    for topic in cdc_topics():
        assert "Row" in schemas[topic]["value"]["$defs"], topic  # per table, not envelope-only
        keys, values = validator(schemas[topic]["key"]), validator(schemas[topic]["value"])
        for msg in read_topic(bootstrap, topic):
            where = f"{topic}@{msg.partition()}:{msg.offset()}"
            key_errors = [e.message for e in keys.iter_errors(orjson.loads(msg.key()))]
            assert not key_errors, (where, key_errors)
            value = None if msg.value() is None else orjson.loads(msg.value())
            error = best_match(values.iter_errors(value))
            assert error is None, (where, list(error.absolute_path), error.message[:500])
            op = "tombstone" if value is None else value["op"]
            ops[op] = ops.get(op, 0) + 1
    return ops


def console_consumer(bootstrap: str, topic: str) -> list[Record]:
    """Every record of ``topic`` as Kafka's console consumer prints them (``print.key``)."""
    probe = Consumer({"bootstrap.servers": bootstrap, "group.id": "end-offsets"})
    try:
        parts = probe.list_topics(topic, timeout=10).topics[topic].partitions
        total = sum(end_offset(probe, TopicPartition(topic, p, 0)) for p in parts)
    finally:
        probe.close()
    assert total > 0
    proc = subprocess.run(
        tool_command(CONSOLE_CONSUMER, "--bootstrap-server", bootstrap, "--topic", topic,
                     "--from-beginning", "--max-messages", str(total), "--timeout-ms", "30000",
                     "--property", "print.key=true", "--property", "key.separator=\t"),
        capture_output=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    lines = proc.stdout.decode().splitlines()
    assert len(lines) == total, (len(lines), total, proc.stderr.decode()[-2000:])
    records: list[Record] = []
    for line in lines:
        key, _, value = line.partition("\t")
        records.append((orjson.loads(key), orjson.loads(value)))  # a tombstone prints "null"
    return records


def flink_sql(bootstrap: str, topic: str, key_fields: list[str],
              columns: list[tuple[str, str]]) -> tuple[dict[str, Any], dict[str, int]]:
    """The rows Flink SQL materialises from ``topic`` (``columns`` as (name, SQL type)) by CDC
    key (key fields joined by ``|``), and how many changelog rows of each kind (``+I``, ``-U``,
    ``+U``, ``-D``) it applied."""
    proc = subprocess.run(materialise_command(bootstrap, topic, key_fields, columns),
                          capture_output=True, timeout=240, check=False)
    assert proc.returncode == 0, proc.stderr.decode()[-3000:]
    *rows, summary = [orjson.loads(line) for line in proc.stdout.splitlines()]
    return ({"|".join(str(r["row"][f]) for f in key_fields): r["row"] for r in rows},
            dict(summary["changes"]))


def materialise(records: list[Record]) -> tuple[dict[str, Any], int]:
    """The last image per CDC key (a delete or tombstone removes it), and the tombstones seen."""
    state: dict[str, Any] = {}
    tombstones = 0
    for key, value in records:
        if value is None or value["op"] == "d":
            state.pop(key["id"], None)
            tombstones += value is None
        else:
            state[key["id"]] = value["after"]
    return state, tombstones


def emulator_table(stack: Stack, system: str, table: str, key_fields: list[str]) -> dict[str, Any]:
    """The emulator's rows of ``table`` by CDC key (key fields joined by ``|``), annotations
    stripped as the sources strip them."""
    session = stack.dataverse() if system == "dataverse" else stack.finance()
    try:
        rows = session.get_all(table, {"cross-company": "true"} if system == "finance" else None)
    finally:
        session.close()
    return {"|".join(str(r[f]) for f in key_fields): {k: v for k, v in r.items() if "@" not in k}
            for r in rows}
