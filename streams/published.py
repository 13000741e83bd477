"""The key facts this worker has sent in this run, so an unchanged one is not sent again.

An emit publishes the target key it wrote as the fact ``key:<map>:<source id>`` (what a delete of
the record, and a row referencing it, wait for). Every update of a record emits, and its key
rarely changes: sent each time, the fact cost every change one more gate record produced,
consumed, decoded and handled (a quarter of the worker's messages in `dualwrite bench` P1).

A key fact has one writer: the gate partition of its record's changes, handled in order by one
worker at a time. What this worker sent last for a key is therefore the value the gate at the
fact's key holds or will hold once its records arrive (they were sent before the sending
record's offset can be committed, and a record's offsets are committed only after the producer
is flushed). So a value equal to the last one sent here is skipped.

What this worker sent is kept only in memory and forgotten when its partitions move (another
worker may write the key meanwhile) and when the process ends (a crash may have lost what was
sent: the changes are handled again from the committed offsets and send it again). Forgetting is
always safe: it only sends a fact again. Bounded: past `MAX_KEYS` keys it starts over.
Only ``key:`` facts are kept; a pair's halves have writers on both sides.
"""

from __future__ import annotations

from typing import Any

from streams.maps.model import KEY_FACT_PREFIX

__all__ = ["MAX_KEYS", "PUBLISHED", "Published", "skips"]

PUBLISHED = "published"  # the name handlers read it under (`streams.effects.Recorder.get`)
MAX_KEYS = 100_000


def skips(fact_key: str) -> bool:
    """Whether a fact of this key may be skipped when unchanged (a key fact: one writer)."""
    return fact_key.startswith(KEY_FACT_PREFIX)


class Published(dict[str, Any]):
    """fact key -> the value last sent for it by this worker, in this run."""

    def __init__(self, max_keys: int = MAX_KEYS) -> None:
        super().__init__()
        self.max_keys = max_keys

    def __setitem__(self, key: str, value: Any) -> None:
        if len(self) >= self.max_keys and key not in self:
            self.clear()  # forgetting only sends facts again
        super().__setitem__(key, value)
