"""Every Prometheus metric of the stream processor, declared once.

A change that ends without a command and without a dead letter is always counted with its
reason; streams/README.md lists every reason. The reasons the processor names itself are here.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from prometheus_client import Counter, Gauge
from prometheus_client.metrics import MetricWrapperBase

__all__ = [
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


@lru_cache(maxsize=4096)
def child(metric: MetricWrapperBase, *labels: str) -> Any:
    """``metric.labels(*labels)``, looked up once: prometheus_client checks and locks on every
    call, a few per change on the worker's hot path. The label values are bounded (maps, tables,
    reasons, stages); the cache is too, so a stray value cannot grow it."""
    return metric.labels(*labels)
