"""Every Prometheus metric of the connectors, declared once (arroyo habit).

Labels: ``system`` is the API the connector talks to (dataverse | finance); ``role`` is source
or sink. Counters only grow; tests read them through `sample`.
"""

from __future__ import annotations

from prometheus_client import REGISTRY, Counter, Gauge

__all__ = [
    "APPLIED",
    "CONCURRENCY",
    "DLQ",
    "EVENTS",
    "REQUESTS",
    "RETRIES",
    "SKIPPED",
    "THROTTLED",
    "sample",
]

REQUESTS = Counter("dualwrite_connector_requests", "HTTP requests sent to an API, by outcome status.",
                   ["system", "method", "status"])
RETRIES = Counter("dualwrite_connector_retries", "Requests retried after a transient failure.",
                  ["system", "reason"])
THROTTLED = Counter("dualwrite_connector_throttled", "Responses 429/503 (service protection).",
                    ["system"])
DLQ = Counter("dualwrite_connector_dlq", "Records sent to sync.dlq.", ["system", "role"])
APPLIED = Counter("dualwrite_sink_applied", "Writes the target acknowledged (acks published).",
                  ["system", "op"])
SKIPPED = Counter("dualwrite_sink_skipped",
                  "Commands not sent: superseded in the window, already applied, or unchanged.",
                  ["system", "reason"])
EVENTS = Counter("dualwrite_source_events", "Change events produced by a source.",
                 ["system", "op"])
CONCURRENCY = Gauge("dualwrite_sink_concurrency", "Current AIMD concurrency limit.", ["system"])


def sample(name: str, **labels: str) -> float:
    """Current value of a counter sample (``_total`` added for counters), 0 when unseen."""
    for suffix in ("_total", ""):
        value = REGISTRY.get_sample_value(name + suffix, labels)
        if value is not None:
            return value
    return 0.0
