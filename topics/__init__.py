"""The wire contract: topic catalog, change-event envelope, commands and acks, codecs,
provisioning. Imports nothing of the project."""

from topics.admin import ApplyReport, Drift, apply_topics
from topics.catalog import (
    TopicSpec,
    applied_topic,
    catalog,
    cdc_topic,
    commands_topic,
)
from topics.codec import (
    decode_ack,
    decode_command,
    decode_event,
    decode_key,
    decode_model,
    encode,
    encode_event,
    encode_key,
)
from topics.commands import Applied, Command, CommandSource, WriteOp, target_key
from topics.control import MapState, SourceOffset, SourceOffsetKey
from topics.dlq import (
    DLQ_HEADERS,
    DLQ_SUPERSEDED_HEADER,
    DLQ_TRUNCATED_HEADER,
    DLQ_VALUE_HEADER,
    RETRY_HEADER,
    dlq_headers,
    is_retry,
    read_headers,
)
from topics.envelope import (
    MAX_VERSION,
    ChangeEvent,
    ChangeKey,
    Op,
    Source,
    System,
    TransactionBlock,
    parse_version,
)
from topics.errors import DecodeError, DecodeReason
from topics.schema import topic_schemas

__all__ = [
    "DLQ_HEADERS",
    "DLQ_SUPERSEDED_HEADER",
    "DLQ_TRUNCATED_HEADER",
    "DLQ_VALUE_HEADER",
    "MAX_VERSION",
    "RETRY_HEADER",
    "Applied",
    "ApplyReport",
    "ChangeEvent",
    "ChangeKey",
    "Command",
    "CommandSource",
    "DecodeError",
    "DecodeReason",
    "Drift",
    "MapState",
    "Op",
    "Source",
    "SourceOffset",
    "SourceOffsetKey",
    "System",
    "TopicSpec",
    "TransactionBlock",
    "WriteOp",
    "applied_topic",
    "apply_topics",
    "catalog",
    "cdc_topic",
    "commands_topic",
    "decode_ack",
    "decode_command",
    "decode_event",
    "decode_key",
    "decode_model",
    "dlq_headers",
    "encode",
    "encode_event",
    "encode_key",
    "is_retry",
    "parse_version",
    "read_headers",
    "target_key",
    "topic_schemas",
]
