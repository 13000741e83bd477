"""Every Prometheus metric of the stream processor, declared once.

A change that ends without a command and without a dead letter is always counted with its
reason; streams/README.md lists every reason. The reasons the processor names itself are here.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from prometheus_client import Counter, Gauge, Histogram
from prometheus_client.metrics import MetricWrapperBase

__all__ = [
    "BATCHES_ABORTED",
    "BATCH_COMMIT_SECONDS",
    "BATCH_RECORDS",
    "BATCH_SECONDS",
    "BEFORE_OUR_DELETE",
    "COMMANDS",
    "CONFLICTS",
    "DELETE_UNWRITTEN",
    "DLQ",
    "DROPPED",
    "DUPLICATES",
    "ECHOES",
    "EVENTS_IN",
    "EXPIRED",
    "LAST_COMMIT",
    "NOOPS",
    "OVERTAKEN",
    "PARKED",
    "PARKED_AGE_INTERVAL_S",
    "PARKED_OLDEST_AGE",
    "RELEASED",
    "RENUMBERED",
    "STALE",
    "TOMBSTONE",
    "child",
]

# Reasons (label values).
BEFORE_OUR_DELETE = "target row shown from before our delete"  # DROPPED: see streams.echo
DELETE_UNWRITTEN = "delete of a record never written"  # PARKED: waits for the record's key fact
OVERTAKEN = "its record was deleted since"  # DROPPED: an upsert older than its record's delete
RENUMBERED = "a newer version was written under another key"  # DROPPED: see streams.handlers
STALE = "older than the last write sent for the row"  # DROPPED: see streams.echo.is_stale
TOMBSTONE = "tombstone"  # DROPPED (map "-"): the null record after a delete event carries nothing

EVENTS_IN = Counter("dualwrite_streams_events_in_total", "CDC events read.", ["system", "table"])
DUPLICATES = Counter("dualwrite_streams_duplicates_dropped_total",
                     "CDC events at or below the last seen source version.", ["system", "table"])
ECHOES = Counter("dualwrite_streams_echoes_dropped_total",
                 "Target feed changes recognised as our own writes.", ["map"])
NOOPS = Counter("dualwrite_streams_noops_dropped_total",
                "Commands not sent because the target already holds the values.", ["map"])
PARKED = Counter("dualwrite_streams_parked_total", "Changes parked by the gate.", ["map", "reason"])
RELEASED = Counter("dualwrite_streams_released_total", "Parked changes released.", ["reason"])
COMMANDS = Counter("dualwrite_streams_commands_total", "Commands produced.", ["map", "target"])
DROPPED = Counter("dualwrite_streams_dropped_total", "Changes a map does not sync.", ["map", "reason"])
CONFLICTS = Counter("dualwrite_streams_conflicts_total", "Two-way conflicts (loser recorded).",
                    ["map", "loser"])
DLQ = Counter("dualwrite_streams_dlq_total", "Records sent to sync.dlq.", ["stage", "error"])
EXPIRED = Counter("dualwrite_streams_expired_total", "Records retention deleted before the worker's "
                  "group read them (found when a partition is assigned): their changes did not sync.",
                  ["topic"])
# Per worker, over the partitions it owns: alert on max by (map) across the workers.
PARKED_OLDEST_AGE = Gauge("dualwrite_streams_parked_oldest_age_seconds",
                          "Age of the oldest change parked by this worker's gate, per map (0: none "
                          "waits; deletes of records never written do not count).", ["map"])
# How often the worker re-reads its parked table for the gauge: a flood may park many changes
# and the worker is CPU-bound, so not on every transaction tick.
PARKED_AGE_INTERVAL_S = 15.0
MAPS_PAUSED = Counter("dualwrite_streams_maps_paused_total",
                      "Maps paused by the processor after a run of rejected changes.", ["map"])

# The batch engine (`streams.engine`), per worker.
BATCH_RECORDS = Histogram("dualwrite_streams_batch_records", "Records in each batch the batch engine took.",
                          buckets=(1, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10_000))
BATCH_SECONDS = Histogram("dualwrite_streams_batch_seconds",
                          "Seconds per batch of the batch engine, from its transaction's start to its commit.",
                          buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0))
BATCH_COMMIT_SECONDS = Histogram("dualwrite_streams_batch_commit_seconds",
                                 "Seconds the batch engine waited for Kafka to take a batch: the producer's "
                                 "flush, the consumed offsets and the commit.",
                                 buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0))
BATCHES_ABORTED = Counter("dualwrite_streams_batches_aborted_total",
                          "Batches whose transaction Kafka refused (a rebalance under way): aborted and read "
                          "again from the committed offsets.")
# A worker commits a batch at least every tick interval, even idle (its ticks): alert when this
# stops moving.
LAST_COMMIT = Gauge("dualwrite_streams_last_batch_commit_timestamp_seconds",
                    "When the batch engine last committed a batch (Unix time).")


@lru_cache(maxsize=4096)
def child(metric: MetricWrapperBase, *labels: str) -> Any:
    """``metric.labels(*labels)``, looked up once: prometheus_client checks and locks on every
    call, a few per change on the worker's hot path. The label values are bounded (maps, tables,
    reasons, stages); the cache is too, so a stray value cannot grow it."""
    return metric.labels(*labels)
