"""Errors raised while reading the wire contract.

    DecodeError                 a record's bytes are not a valid message of its topic
      reason: DecodeReason      NOT_JSON | WRONG_SHAPE | UNKNOWN_OP | MISSING_KEY | EMPTY | BAD_VERSION

One typed error for every class of bad input, so a caller can route any undecodable record to
the DLQ with a reason header instead of crashing the line.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["DecodeError", "DecodeReason"]


class DecodeReason(StrEnum):
    NOT_JSON = "not_json"
    WRONG_SHAPE = "wrong_shape"
    UNKNOWN_OP = "unknown_op"
    MISSING_KEY = "missing_key"
    EMPTY = "empty"
    BAD_VERSION = "bad_version"


class DecodeError(ValueError):
    """The bytes cannot be read as the expected message; `reason` says why."""

    def __init__(self, reason: DecodeReason, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail
