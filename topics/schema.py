"""JSON Schemas of each topic's key and value, for consumers outside the project."""

from __future__ import annotations

from typing import Any

from topics.catalog import TopicSpec

__all__ = ["topic_schemas"]

_STRING_KEY = {"type": "string", "description": "Target record key: entity(k1='v1',...)"}


def topic_schemas(specs: list[TopicSpec]) -> dict[str, dict[str, Any]]:
    """``{topic: {"key": schema, "value": schema, "description": ...}}``."""
    out: dict[str, dict[str, Any]] = {}
    for spec in specs:
        key = spec.key_model.model_json_schema() if spec.key_model else _STRING_KEY
        value: dict[str, Any] = (
            spec.value_model.model_json_schema() if spec.value_model
            else {"description": "Original record bytes (any format); reasons in dlq.* headers."}
        )
        out[spec.name] = {"description": spec.description, "cleanup": spec.cleanup,
                          "key": key, "value": value}
    return out
