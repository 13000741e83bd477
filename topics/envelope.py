"""The change event: Debezium-compatible JSON, so Flink `debezium-json`, ClickHouse and ksqlDB
read our CDC topics without a custom decoder.

key   {"id": "<primary key>"}
value {"before", "after", "op", "ts_ms", "source", "transaction"}

A delete is an ``op: "d"`` event followed by a tombstone (same key, null value).

A source version is decimal ASCII digits, at most 19 of them, within 0..2^63-1 (`parse_version`):
both systems' versions are Edm.Int64 (Dataverse ``versionnumber``, Finance row versions), and the
consumers of the topics read them as a signed 64-bit integer (a Java ``long`` in Flink, Int64 in
ClickHouse), so a larger one is refused where it is decoded rather than wrapping around there.
"""

from __future__ import annotations

from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from topics.errors import DecodeError, DecodeReason

__all__ = [
    "MAX_VERSION",
    "ChangeEvent",
    "ChangeKey",
    "Op",
    "Source",
    "System",
    "TransactionBlock",
    "parse_version",
    "trusted_model",
]

MAX_VERSION = 2**63 - 1  # Edm.Int64
_MAX_DIGITS = 19


def parse_version(text: object) -> int:
    """A source version as an int, or `DecodeError` (``bad_version``) saying why not.

    ``str.isdigit`` alone would accept non-ASCII digits ("\u0663", "\u00b2") that ``int()`` reads
    or refuses unpredictably; only ASCII 0-9 are versions.
    """
    if not isinstance(text, str):
        raise DecodeError(DecodeReason.BAD_VERSION, f"expected decimal digits, got {type(text).__name__}")
    if not text or not (text.isascii() and text.isdigit()):
        raise DecodeError(DecodeReason.BAD_VERSION, f"{text[:40]!r} is not ASCII decimal digits")
    if len(text) > _MAX_DIGITS:
        raise DecodeError(DecodeReason.BAD_VERSION, f"{len(text)} digits (at most {_MAX_DIGITS})")
    value = int(text)
    if value > MAX_VERSION:
        raise DecodeError(DecodeReason.BAD_VERSION, f"{text} is above 2^63-1 (Edm.Int64)")
    return value

Op = Literal["c", "u", "d", "r"]
System = Literal["dataverse", "finance"]
SnapshotMark = Literal["true", "false", "last"]  # `Source.snapshot`
M = TypeVar("M", bound=BaseModel)
_set = object.__setattr__


def trusted_model(model: type[M], values: dict[str, Any], extra: dict[str, Any] | None) -> M:
    """An instance of ``model`` holding ``values`` (every field, in declaration order) as
    validation would have left them, built the way ``model_construct`` builds one, through the
    instance attributes pydantic documents (``__dict__``, ``__pydantic_fields_set__``,
    ``__pydantic_extra__``, ``__pydantic_private__``), without its per-field loop, which costs
    more than validating. The unit tests hold every trusted model equal to the validated one,
    field for field and byte for byte on the wire, so a pydantic that builds models otherwise
    fails them instead of the topics."""
    instance = model.__new__(model)
    _set(instance, "__dict__", values)
    _set(instance, "__pydantic_fields_set__", set(values))
    _set(instance, "__pydantic_extra__", extra)
    _set(instance, "__pydantic_private__", None)
    return instance


class ChangeKey(BaseModel):
    """Record key of a CDC topic: the source row's primary key."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(min_length=1, description="Primary key of the source row (GUID or composite key string).")


class Source(BaseModel):
    """Where and when the change happened at the source."""

    model_config = ConfigDict(frozen=True, extra="allow")

    system: System = Field(description="Source system.")
    table: str = Field(min_length=1, description="Dataverse entity set or Finance public collection.")
    version: str = Field(
        pattern=r"^[0-9]{1,20}$",
        description="Row version at the source (Dataverse versionnumber, Finance RecVersion/feed version); decimal digits.",
    )
    ts_ms: int = Field(ge=0, description="Source commit time, ms since the epoch.")
    snapshot: SnapshotMark = Field("false", description="Part of an initial snapshot.")
    company: str | None = Field(None, description="Legal entity (dataAreaId / cdm_companycode) when known.")
    txid: str | None = Field(None, description="Source transaction: changes committed together share it.")
    origin: str | None = Field(None, description="Principal that made the change (for echo detection).")

    @field_validator("version")
    @classmethod
    def _version_in_range(cls, value: str) -> str:
        parse_version(value)
        return value

    @classmethod
    def trusted(cls, system: System, table: str, version: str, ts_ms: int, snapshot: str = "false",
                company: str | None = None, txid: str | None = None, origin: str | None = None) -> Source:
        """A `Source` from parts its caller has already checked (a source reader: ``version``
        through `parse_version`, ``ts_ms`` not negative), without validating them again; equal
        to the validated model. A snapshot builds one per row, thousands a page, and
        validation cost more than everything else done for a row."""
        return trusted_model(cls, {"system": system, "table": table, "version": version, "ts_ms": ts_ms,
                              "snapshot": snapshot, "company": company, "txid": txid, "origin": origin}, {})

    @property
    def version_int(self) -> int:
        return int(self.version)


class TransactionBlock(BaseModel):
    """Debezium's transaction block: position of this event inside its source transaction.

    ``event_count`` is a dualwrite extension: how many events of this transaction the source
    captured (Debezium puts that count on the END record of its transaction metadata topic). The
    processor releases a transaction once it holds that many of its events.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    total_order: int = Field(ge=1, description="Position of this event in the transaction (1-based).")
    data_collection_order: int = Field(ge=1, description="Position among this table's events.")
    event_count: int | None = Field(None, ge=1, description="Events of this transaction captured.")


class ChangeEvent(BaseModel):
    """One captured change of one row."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None
    op: Op
    ts_ms: int = Field(ge=0, description="When the change was captured, ms since the epoch.")
    source: Source
    transaction: TransactionBlock | None = None

    @classmethod
    def trusted(cls, op: Op, ts_ms: int, source: Source, before: dict[str, Any] | None = None,
                after: dict[str, Any] | None = None, transaction: TransactionBlock | None = None) -> ChangeEvent:
        """A `ChangeEvent` from parts its caller has already checked (``after`` a JSON object
        unless the op is a delete, ``ts_ms`` not negative, ``source`` a `Source`), without
        validating them again: see `Source.trusted`."""
        return trusted_model(cls, {"before": before, "after": after, "op": op, "ts_ms": ts_ms, "source": source,
                              "transaction": transaction}, None)

    @model_validator(mode="after")
    def _images_match_op(self) -> ChangeEvent:
        if self.op in ("c", "r", "u") and self.after is None:
            raise ValueError(f"op {self.op!r} needs an 'after' image")
        if self.op == "d" and self.after is not None:
            raise ValueError("op 'd' must have 'after' = null")
        return self

    @property
    def is_delete(self) -> bool:
        return self.op == "d"

    @property
    def row(self) -> dict[str, Any]:
        """The row image that describes the record now (before-image for a delete)."""
        return (self.before if self.op == "d" else self.after) or {}
