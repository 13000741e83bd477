"""Dead-letter headers: every record on ``sync.dlq`` carries why and where it failed.

A record re-driven from the DLQ (`dualwrite dlq retry`) goes back to its original topic with
the `RETRY_HEADER`: the processor then lets it through even though its source version was
already recorded (a record that failed after dedupe, in a map transform, was seen once).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

__all__ = ["DLQ_HEADERS", "DLQ_SUPERSEDED_HEADER", "DLQ_TRUNCATED_HEADER", "DLQ_VALUE_HEADER", "RETRY_HEADER",
           "dlq_headers", "is_retry", "read_headers"]

DLQ_HEADERS = (
    "dlq.stage",  # decode | route | transform | plan | emit | gate | sink | source | capture
    "dlq.map",
    "dlq.error.class",
    "dlq.error.message",
    "dlq.original.topic",
    "dlq.original.partition",
    "dlq.original.offset",
    "dlq.http.status",
    "dlq.ts_ms",
)

# Present only where they apply:
DLQ_TRUNCATED_HEADER = "dlq.payload.truncated"  # a capture dead letter's value was cut to fit: original size
DLQ_VALUE_HEADER = "dlq.value"  # "merged-command": the value is the coalesced command a sink attempted
DLQ_SUPERSEDED_HEADER = "dlq.superseded"  # ids of the commands merged into that one

RETRY_HEADER = "dualwrite.retry"
_UNSET: tuple[object, ...] = (None, b"", "", b"0", "0")


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
    """Kafka headers naming the stage, map, error and original position of a dead letter.

    Every value is written as UTF-8, a lone surrogate as its escape (``\\ud800``): messages
    carry text from hostile places (an API's error body, a row's key), and a header that cannot
    be written would fail the dead letter itself, again on every retry."""
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
    return [(k, str(v).encode("utf-8", "backslashreplace")) for k, v in values.items() if v is not None]


def read_headers(headers: Iterable[tuple[str, bytes | None]] | None) -> dict[str, str]:
    """Headers as a str dict (last value wins), for display and tests."""
    out: dict[str, str] = {}
    for name, value in headers or ():
        out[name] = value.decode(errors="replace") if value is not None else ""
    return out


def is_retry(headers: Mapping[str, object] | Iterable[tuple[str, object]] | None) -> bool:
    """True when a record carries ``dualwrite.retry`` (it was re-driven from the DLQ).

    Accepts the header shapes of both clients: a list of ``(name, value)`` pairs
    (confluent-kafka, aiokafka) or a mapping (Faust may hand either).
    """
    if not headers:
        return False
    pairs: Iterable[tuple[str, object]] = (
        headers.items() if isinstance(headers, Mapping) else headers)
    try:
        return any(name == RETRY_HEADER and value not in _UNSET for name, value in pairs)
    except (TypeError, ValueError):  # not pairs: no retry header to be found
        return False
