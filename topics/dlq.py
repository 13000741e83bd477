"""Dead-letter headers: every record on ``sync.dlq`` carries why and where it failed."""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["DLQ_HEADERS", "dlq_headers", "read_headers"]

DLQ_HEADERS = (
    "dlq.stage",  # decode | dedupe | transform | gate | sink | source
    "dlq.map",
    "dlq.error.class",
    "dlq.error.message",
    "dlq.original.topic",
    "dlq.original.partition",
    "dlq.original.offset",
    "dlq.http.status",
    "dlq.ts_ms",
)


def dlq_headers(
    *,
    stage: str,
    error_class: str,
    message: str,
    map_name: str | None = None,
    topic: str | None = None,
    partition: int | None = None,
    offset: int | None = None,
    http_status: int | None = None,
    ts_ms: int | None = None,
) -> list[tuple[str, bytes]]:
    """Kafka headers naming the stage, map, error and original position of a dead letter."""
    values: dict[str, object | None] = {
        "dlq.stage": stage,
        "dlq.map": map_name,
        "dlq.error.class": error_class,
        "dlq.error.message": message[:4000],
        "dlq.original.topic": topic,
        "dlq.original.partition": partition,
        "dlq.original.offset": offset,
        "dlq.http.status": http_status,
        "dlq.ts_ms": ts_ms,
    }
    return [(k, str(v).encode()) for k, v in values.items() if v is not None]


def read_headers(headers: Iterable[tuple[str, bytes | None]] | None) -> dict[str, str]:
    """Headers as a str dict (last value wins), for display and tests."""
    out: dict[str, str] = {}
    for name, value in headers or ():
        out[name] = value.decode(errors="replace") if value is not None else ""
    return out
