"""JSON Schemas of each topic's key and value, for consumers outside the project.

A CDC topic's schema is per table when its `TableSchema` is given: ``before``/``after`` hold
that table's columns (`topics.table_schema`, from the source API's ``$metadata``), the key names
the key fields, and the value may be null (the tombstone after a delete). Without one, its
``before``/``after`` are any JSON objects (the envelope only, as ``--offline`` prints it).
Command and ack topics are keyed by the target record key as plain UTF-8 text (not JSON);
their values carry the command id.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from topics.catalog import TopicSpec
from topics.envelope import ChangeEvent, ChangeKey, System
from topics.table_schema import EntityShape, row_schema

__all__ = ["TableSchema", "cdc_key_schema", "cdc_value_schema", "topic_schemas"]

DIALECT = "https://json-schema.org/draft/2020-12/schema"

_RECORD_KEY = {
    "type": "string",
    "description": "The target row's record key, as plain UTF-8 text (not JSON): "
                   "entity(k1='v1',k2=2), alternate-key fields sorted, strings quoted with ' "
                   "doubled inside. Every command and ack of one target row shares it, so they "
                   "are in one partition, in order; the value's command_id names the command.",
}
_TOMBSTONE = {"type": "null", "description": "Tombstone: follows a delete (op 'd') with the same "
                                             "key, so compaction may drop the row."}


@dataclass(frozen=True)
class TableSchema:
    """A CDC topic's source table as its API's metadata declares it."""

    system: System
    table: str
    shape: EntityShape


def _key_description(t: TableSchema) -> str:
    fields = ", ".join(t.shape.key) or "(none declared)"
    if t.system == "dataverse" or len(t.shape.key) == 1:
        return f"The {t.table} row's key {fields}, as text."
    return (f"The {t.table} row's key fields {fields}, in that order, joined by '|' (a '|' or "
            "'\\' inside a value escaped with '\\'), e.g. usmf|P-1.")


def cdc_key_schema(table: TableSchema | None) -> dict[str, Any]:
    """``{"id": ...}``, naming the key fields the id is made of when the table is known."""
    schema = ChangeKey.model_json_schema()
    if table is not None:
        schema["properties"]["id"]["description"] = _key_description(table)
        schema["x-key-fields"] = list(table.shape.key)
    return {"$schema": DIALECT, **schema}


def cdc_value_schema(table: TableSchema | None) -> dict[str, Any]:
    """The change event (or a tombstone); ``before``/``after`` typed by the table when known.

    A create, update or snapshot read carries an ``after`` image and a delete none; an update's
    ``before`` is the previous image, a delete's the last one (only its key when the source lost
    its images)."""
    event = ChangeEvent.model_json_schema()
    defs: dict[str, Any] = event.pop("$defs", {})
    if table is None:
        return {"$schema": DIALECT, "$defs": {**defs, "ChangeEvent": event},
                "anyOf": [{"$ref": "#/$defs/ChangeEvent"}, _TOMBSTONE]}
    defs["Row"] = row_schema(table.shape, f"{table.system} {table.table} row")
    row_or_null = {"anyOf": [{"$ref": "#/$defs/Row"}, {"type": "null"}]}
    props = event["properties"]
    props["before"] = {**row_or_null, "description": "The previous image (update), the last image "
                       "(delete; only the key if the source lost it), else null."}
    props["after"] = {**row_or_null, "description": "The row after the change; null for a delete."}
    props["source"] = {"allOf": [props["source"], {"properties": {"system": {"const": table.system}}}]}
    event["if"] = {"properties": {"op": {"const": "d"}}}
    event["then"] = {"properties": {"after": {"type": "null"}}}
    event["else"] = {"properties": {"after": {"$ref": "#/$defs/Row"}}, "required": ["after"]}
    return {"$schema": DIALECT, "$defs": {**defs, "ChangeEvent": event},
            "anyOf": [{"$ref": "#/$defs/ChangeEvent"}, _TOMBSTONE]}


def topic_schemas(specs: list[TopicSpec],
                  tables: Mapping[str, TableSchema] | None = None) -> dict[str, dict[str, Any]]:
    """``{topic: {"description", "cleanup", "key": schema, "value": schema}}``; ``tables``:
    the source table of each CDC topic (by topic name) whose columns are known."""
    known = tables or {}
    out: dict[str, dict[str, Any]] = {}
    for spec in specs:
        key: dict[str, Any]
        value: dict[str, Any]
        if spec.value_model is ChangeEvent:
            key, value = cdc_key_schema(known.get(spec.name)), cdc_value_schema(known.get(spec.name))
        else:
            key = spec.key_model.model_json_schema() if spec.key_model else dict(_RECORD_KEY)
            value = (spec.value_model.model_json_schema() if spec.value_model else
                     {"description": "Original record bytes (any format); reasons in dlq.* headers."})
        if spec.name == "sync.dlq":
            key = {"description": "The original record's key, as it was."}
        elif spec.name == "sync.control":
            key = {"type": "string", "description": "The map's name, as plain UTF-8 text."}
        out[spec.name] = {"description": spec.description, "cleanup": spec.cleanup,
                          "key": key, "value": value}
    return out
