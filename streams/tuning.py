"""The processor's decisions a deployment tunes: defined once, here, without Faust.

`streams.config.StreamsConfig` (what the worker runs with) and
`dualwrite.settings.ProcessorSettings` (``DUALWRITE_PROCESSOR__*``, the README's table) both
take these fields from `Tuning`, so a default, a bound or a description has one place.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

__all__ = ["DEFAULT_FETCH_MAX_WAIT_MS", "FAUST_FETCH_MAX_WAIT_MS", "Tuning"]

DEFAULT_FETCH_MAX_WAIT_MS = 100  # `streams.transport`
FAUST_FETCH_MAX_WAIT_MS = 1500  # what Faust's aiokafka driver fixes


class Tuning(BaseModel):
    tx_timeout_ms: int = Field(10_000, ge=0, description="Release a source transaction whose events "
                               "did not all arrive after this long (members go as far as they got).")
    tx_forget_ms: int = Field(3_600_000, ge=60_000, description="How long a released source "
                              "transaction's parking slot (bookkeeping and a marker per event) "
                              "is kept before it is deleted: long past any uncommitted window "
                              "(`streams.released`).")
    conflict_window_ms: int = Field(5_000, ge=0, description="Edits of a two-way field on both "
                                    "sides closer than this are a conflict (the map's master wins).")
    pause_after_rejections: int = Field(100, ge=0, description="Pause a map (on sync.control, "
                                        "resumed with `dualwrite maps resume`) after this many of its "
                                        "changes failed to transform in a row; 0 never pauses.")
    producer_linger_ms: int = Field(50, ge=0, description="How long the worker's producer gathers "
                                    "sends into one request (throughput against per-hop latency: "
                                    "each change makes several sends; at 0 the socket writes "
                                    "dominate).")
    fetch_max_wait_ms: int = Field(
        DEFAULT_FETCH_MAX_WAIT_MS, ge=1, le=FAUST_FETCH_MAX_WAIT_MS, description="How long the "
        "broker may hold the worker's fetch when nothing is new; records of partitions left out of "
        "that fetch wait as long (Faust's own is 1,500: `streams.transport`).")
    engine: Literal["batch", "faust"] = Field(
        "batch", description="How the worker carries its decisions: ``batch``, one loop over "
        "batches of records, each a Kafka transaction, with no hop through the gate topic for a "
        "gate key this worker owns (`streams.engine`); ``faust``, the Faust agents of earlier "
        "releases (a hop per step, at least once). Either opens state the Faust agents wrote; "
        "the Faust agents refuse (exit 78) a group the batch engine committed (`streams.lineage`).")
