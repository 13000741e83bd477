"""Small models of the compacted operational topics: map state and connector checkpoints."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from topics.envelope import System

__all__ = ["MapState", "SourceOffset", "SourceOffsetKey"]


class MapState(BaseModel):
    """Value on ``sync.control``, keyed by map name: whether a map runs."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    map: str
    state: Literal["running", "paused"]
    reason: str | None = None
    ts_ms: int = Field(ge=0)


class SourceOffsetKey(BaseModel):
    """Key on ``sync.source-offsets``: one checkpoint per connector and table."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    system: System
    table: str


class SourceOffset(BaseModel):
    """Where a source connector has got to: a delta link / token or a version watermark.

    Written only after every event it covers was acknowledged by Kafka.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    system: System
    table: str
    position: str = Field(description="Dataverse delta link or Finance feed watermark.")
    snapshot_done: bool = Field(True, description="False while an initial snapshot is in progress.")
    ts_ms: int = Field(ge=0)
