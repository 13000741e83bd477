"""Flink SQL reading a CDC topic with the `debezium-json` format, in a local mini-cluster.

The tested form of docs/topics.md's Flink example (issue 13): the end-to-end tests run it on
the topics of a real run and compare the rows Flink materialises with the emulators' tables.

- The jars (Table API, planner, runtime, clients, the Kafka connector, flink-json) come from
  this folder's own POM, resolved and cached by `dualwrite.kafka.classpath.resolve_classpath`
  like the broker's, but only when asked for (`dualwrite kafka fetch --flink`, or first use):
  running Kafka alone never downloads Flink.
- ``MaterialiseTopic.java`` (beside this module) is the job: a Kafka table over one topic,
  read from the earliest to the then-latest offsets (bounded, so the job ends), its changelog
  applied per primary key and printed as JSON lines. `runner_classes` compiles it once with
  ``javac`` into the cache, keyed by the source's and the POM's hashes; concurrent first uses
  each compile into their own directory and the first rename wins.
- `sql_columns` turns a per-table row schema (`dualwrite topics schema`, `x-edm-type`) into
  Flink SQL columns; columns without a plain SQL type (collections, complex, binary) are left
  out, which debezium-json allows (undeclared fields are ignored).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from dualwrite.kafka.classpath import CACHE_DIR, ClasspathError, require_tool, resolve_classpath

__all__ = ["POM", "RUNNER", "RunnerBuildError", "flink_classpath", "materialise_command",
           "runner_classes", "sql_columns"]

POM = Path(__file__).with_name("pom.xml")
RUNNER = Path(__file__).with_name("MaterialiseTopic.java")
JAVA_HINT = "Install a JDK 17+ (Debian: `apt-get install openjdk-17-jdk-headless`)."
HEAP = "512m"  # a mini-cluster at parallelism 1 reading one topic

# Edm type -> Flink SQL type, for JSON values as OData writes them (Int64/Decimal as numbers).
# Edm.DateTimeOffset stays STRING: the API's text, which Flink's TIMESTAMP parsers do not all take.
_SQL_TYPES = {
    "Edm.String": "STRING", "Edm.Guid": "STRING", "Edm.DateTimeOffset": "STRING",
    "Edm.TimeOfDay": "STRING", "Edm.Duration": "STRING",
    "Edm.Boolean": "BOOLEAN", "Edm.SByte": "TINYINT", "Edm.Byte": "SMALLINT",
    "Edm.Int16": "SMALLINT", "Edm.Int32": "INT", "Edm.Int64": "BIGINT",
    "Edm.Decimal": "DECIMAL(38, 10)", "Edm.Double": "DOUBLE", "Edm.Single": "DOUBLE",
    "Edm.Date": "DATE",
}


class RunnerBuildError(ClasspathError):
    """``javac`` is missing or could not compile the Flink job against its classpath."""


def flink_classpath(cache_dir: Path = CACHE_DIR) -> str:
    """Flink's classpath, resolved with Maven on first use (then cached)."""
    return resolve_classpath(cache_dir, pom=POM, label="the Flink jars")


def runner_classes(cache_dir: Path = CACHE_DIR) -> Path:
    """The directory of the compiled job, compiling it on first use."""
    classpath = flink_classpath(cache_dir)
    digest = hashlib.sha256(RUNNER.read_bytes() + POM.read_bytes()).hexdigest()[:16]
    target = cache_dir / f"flink-runner-{digest}"
    if (target / f"{RUNNER.stem}.class").exists():
        return target
    javac = require_tool("javac", JAVA_HINT)
    tmp = cache_dir / f"flink-runner-{digest}.{os.getpid()}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    proc = subprocess.run([javac, "-nowarn", "-cp", classpath, "-d", str(tmp), str(RUNNER)],
                          capture_output=True, text=True, timeout=300, check=False)
    if proc.returncode != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        raise RunnerBuildError(f"javac could not compile {RUNNER.name}:\n{proc.stderr[-2000:]}")
    try:
        tmp.rename(target)
    except OSError:  # another process compiled it first: same source, same classes
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def sql_columns(row_schema: dict[str, Any]) -> list[tuple[str, str]]:
    """(name, Flink SQL type) for each column of a row schema that has a plain SQL type; a
    Finance enum (a non-``Edm`` type serialised by member name) is a STRING."""
    columns: list[tuple[str, str]] = []
    for name, column in row_schema["properties"].items():
        edm_type = column.get("x-edm-type", "")
        if edm_type in _SQL_TYPES:
            columns.append((name, _SQL_TYPES[edm_type]))
        elif "enum" in column:
            columns.append((name, "STRING"))
    return columns


def materialise_command(bootstrap: str, topic: str, key: list[str], columns: list[tuple[str, str]],
                        cache_dir: Path = CACHE_DIR, properties: Path | None = None) -> list[str]:
    """The argv of the job materialising ``topic``: stdout is one ``{"row": {...}}`` line per
    final row, then one ``{"changes": {"+I": n, ...}}`` line. ``properties``: a Kafka client
    properties file (`dualwrite topics client-properties`) for a TLS/SASL cluster, named on the
    command line, its secrets never on it."""
    java = require_tool("java", JAVA_HINT)
    classpath = f"{runner_classes(cache_dir)}{os.pathsep}{flink_classpath(cache_dir)}"
    # Warnings on stderr, except the collect sink's: once the bounded job has ended and every
    # row was read, closing the result asks the stopped mini-cluster for the job's status.
    return [java, f"-Xmx{HEAP}", "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn",
            "-Dorg.slf4j.simpleLogger.log.org.apache.flink.streaming.api.operators.collect=error",
            "-cp", classpath, RUNNER.stem, *(["--properties", str(properties)] if properties else []),
            bootstrap, topic, ",".join(key),
            *(f"{name} {sql_type}" for name, sql_type in columns)]
