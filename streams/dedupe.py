"""Per-record order: a source version at or below the last one seen is a duplicate.

The last seen version is stored with the offset of the record that set it. Faust restores a
table from its changelog, which may be ahead of the committed consumer offset after a crash; the
record that set the version is then delivered again. Same offset = our own replay, not a
duplicate from the source, so it is processed again (its effect may not have been produced).

A record re-driven from the DLQ (``dualwrite dlq retry``, header ``dualwrite.retry``) failed
after dedupe had recorded its version (in a map transform, say): it comes back at a new offset
with the same version and is let through. Never when its version is older than the one seen: a
newer change of the row has been processed since, and replaying the old one would undo it.
"""

from __future__ import annotations

from typing import Any, TypedDict

__all__ = ["Seen", "is_duplicate", "seen_from", "seen_key"]


class Seen(TypedDict):
    version: int
    offset: int


def seen_key(system: str, table: str, record_id: str) -> str:
    return f"{system}:{table}:{record_id}"


def seen_from(value: Any) -> Seen | None:
    """Read a table value back (tables store plain JSON)."""
    if isinstance(value, dict) and "version" in value and "offset" in value:
        return Seen(version=int(value["version"]), offset=int(value["offset"]))
    return None


def is_duplicate(last: Seen | None, version: int, offset: int, *, retried: bool = False) -> bool:
    """True when ``version`` was already seen from a different record of the topic.

    ``retried``: the record was re-driven from the DLQ; its own version (not an older one) is
    processed again.
    """
    if last is None:
        return False
    if offset == last["offset"]:
        return False
    if retried and version == last["version"]:
        return False
    return version <= last["version"]
