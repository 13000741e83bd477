"""Fingerprint of mapped fields: a stable hash over canonical JSON.

Equal fingerprints mean "the target already holds these values": the sink skips the write and
the echo filter recognises our own change coming back. Canonical = keys sorted, no whitespace,
so the same fields hash the same whatever order a row or map produced them in.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import orjson

__all__ = ["canonical_json", "fingerprint"]


def canonical_json(fields: Mapping[str, Any]) -> bytes:
    # OPT_SORT_KEYS sorts nested objects too; non-str keys are rendered as strings.
    return orjson.dumps(dict(fields), option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)


def fingerprint(fields: Mapping[str, Any]) -> str:
    """``sha256:<hex>`` of the canonical JSON of ``fields``."""
    return "sha256:" + hashlib.sha256(canonical_json(fields)).hexdigest()
