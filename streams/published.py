"""The key facts this worker has sent in this run, so an unchanged one is not sent again.

An emit publishes the target key it wrote as the fact ``key:<map>:<source id>`` (what a delete of
the record, and rows referencing it, wait for). Every update of a record emits, and its key
rarely changes: sent each time, the fact cost every change one more gate record produced,
consumed, decoded and handled (0.9 of the 5.3 records the worker wrote per change in
`dualwrite bench` P1).

Who writes a key fact: the emits of its record's versions, each at the gate key of the target
row it writes (``present:<target record>``). While the target key stays the same, one gate
partition, handled in order by one worker at a time, emits every version; when the key changes
(a project renumbered), the version that changed it emits at another partition, maybe on another
worker. So a value is skipped only when this worker sent that same value for the record's
**previous** version (`Pending.prev_version`, the version `ingest` saw before this one): no
other version came between, so nothing else wrote the fact since, and what this worker sent is
what the fact's partition holds or will hold (it was sent before the previous version's offset
could be committed, and offsets are committed only after the producer is flushed). A record
renumbered and back, a version that did not emit (it waits, or was filtered) or a re-driven
change sends the fact again.

Kept only in memory: forgotten when partitions move (revocation clears it) and when the process
ends (a crash re-handles the changes from the committed offsets and sends again). Forgetting is
always safe: it only sends a fact again. Bounded: past `MAX_KEYS` keys it starts over. Only
``key:`` facts are kept: a pair's halves have writers on both sides.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from streams.maps.model import KEY_FACT_PREFIX

if TYPE_CHECKING:
    from streams.pending import Pending

__all__ = ["MAX_KEYS", "PUBLISHED", "Published", "published", "skips", "unchanged"]

PUBLISHED = "published"  # the name handlers read it under (`streams.effects.Recorder.get`)
MAX_KEYS = 100_000


def skips(fact_key: str) -> bool:
    """Whether a fact of this key may be skipped when unchanged (a key fact)."""
    return fact_key.startswith(KEY_FACT_PREFIX)


def published(value: dict[str, Any], item: Pending) -> tuple[dict[str, Any], int]:
    """What is remembered once ``item`` has emitted: the key's value, at the item's version."""
    return value, item.source.version


def unchanged(sent: Any, value: dict[str, Any], item: Pending) -> bool:
    """Whether ``item`` may skip sending ``value``: this worker sent it for the record's previous
    version (a re-driven change always sends: it repairs what went wrong before)."""
    if sent is None or item.prev_version is None or item.source.redriven:
        return False
    sent_value, sent_version = sent
    return bool(sent_version == item.prev_version and sent_value == value)


class Published(dict[str, Any]):
    """fact key -> (value, source version) last sent for it by this worker, in this run."""

    def __init__(self, max_keys: int = MAX_KEYS) -> None:
        super().__init__()
        self.max_keys = max_keys

    def __setitem__(self, key: str, value: Any) -> None:
        if len(self) >= self.max_keys and key not in self:
            self.clear()  # forgetting only sends facts again
        super().__setitem__(key, value)
