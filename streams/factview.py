"""The facts this worker already knows, so a change needs no trip through the gate topic to
learn them.

A change waits for facts (`streams.pending.Need`): lookup rows (``row:``, the indexed columns of
a company, an account, a task), the target keys other records were written under (``key:``, a
task's project) and the presence of target rows (``present:``, a task's project in Finance). The
gate's ``facts`` table holds each in the partition of its key, so reading one from anywhere else
is a repartition: a send to the gate topic and a consume. `FactView` keeps, in memory, what this
process has learned:

- ``ingest`` learns every lookup row it routes (before it sends the row's fact to the gate) and
  every delete it reads (`deleted_key`: an older change of that record, parked meanwhile behind
  its dependencies, is dropped at its emit instead of writing a row its delete already passed);
- the gate mirrors every fact it learns, forgets or reads for its own partitions;

and `streams.route.first_step` answers a change's needs from it before the change leaves
``ingest``: a change whose facts are all known goes straight to its next real step (its pairing
or its emit key). A miss is never an error, only the path of before: the change waits at the
fact's key and the gate releases it when the fact arrives.

Why what the view says can be trusted:
- facts with a source version (lookup rows, written keys) are replaced only by a version at
  least as new, so the gate hearing a row late never undoes what ``ingest`` saw first;
- facts without one (presence, learned from acks and the target's feed) change only in the
  gate's own order, which is the order the gate itself would have answered in;
- a fact read back from the gate's table only fills a gap;
- when partitions move between workers the view is emptied: the facts of partitions this worker
  no longer owns would stop being updated here;
- it is bounded (oldest first out): losing an entry costs a hop, nothing else.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

from prometheus_client import Counter

__all__ = ["KNOWN", "KNOWN_VERSIONED", "LOOKUPS", "FactView", "deleted_key"]

LOOKUPS = Counter("dualwrite_streams_lookups_total",
                  "Facts a change needed at ingest, by where they were answered.", ["where"])

UNVERSIONED = -1
KNOWN = "known"  # the name handlers read the view under (`streams.effects.Recorder.get`)
KNOWN_VERSIONED = "known_versioned"  # the same, each fact read as (value, source version)


def deleted_key(system: str, table: str, record_id: str) -> str:
    """The fact that ``ingest`` saw this source record deleted (value ``{"version": ...}``): a
    change of the record older than its delete, still on its way, is not written any more."""
    return f"deleted:{system}:{table}:{record_id}"


class FactView:
    """fact key -> (source version or `UNVERSIONED`, value)."""

    def __init__(self, max_facts: int = 1_000_000) -> None:
        self.max_facts = max_facts
        self._facts: OrderedDict[str, tuple[int, dict[str, Any]]] = OrderedDict()
        self._cleared = 0  # how many times `clear` ran: a fill under way stops at the next

    def __len__(self) -> int:
        return len(self._facts)

    def get(self, key: str) -> dict[str, Any] | None:
        known = self._facts.get(key)
        return None if known is None else known[1]

    @property
    def versioned(self) -> _Versioned:
        """The view read as ``(value, source version)`` (`UNVERSIONED` when the fact has none)."""
        return _Versioned(self._facts)

    def learn(self, key: str, value: dict[str, Any], version: int | None) -> None:
        """A fact as the gate or ``ingest`` learned it: with a version, the newest version wins;
        without one, it is the gate's latest word on the key."""
        known = self._facts.get(key)
        if version is not None and known is not None and version < known[0]:
            return
        self._put(key, value, UNVERSIONED if version is None else version)

    def fill(self, key: str, value: dict[str, Any]) -> None:
        """A fact read back from the gate's table: only where the view knows nothing."""
        if key not in self._facts:
            self._put(key, value, UNVERSIONED)

    async def fill_from(self, items: Iterable[tuple[str, Any]], every: int = 10_000) -> int:
        """`fill` from the gate's table until the view is full, giving the event loop a turn
        every ``every`` facts (a million take seconds: the producer, the consumer's heartbeats
        and the metrics endpoint would wait). A `clear` meanwhile (partitions revoked during a
        turn) ends it: what is left may be facts of partitions owned elsewhere now, and the
        next assignment's recovery fills again. How many it read."""
        n, cleared = 0, self._cleared
        for n, (key, value) in enumerate(items, 1):
            if isinstance(value, dict):
                self.fill(key, value)
            if len(self) >= self.max_facts:
                break
            if n % every == 0:
                await asyncio.sleep(0)
                if self._cleared != cleared:
                    break
        return n

    def forget(self, key: str) -> None:
        self._facts.pop(key, None)

    def clear(self) -> None:
        self._facts.clear()
        self._cleared += 1

    def _put(self, key: str, value: dict[str, Any], version: int) -> None:
        self._facts[key] = (version, value)
        self._facts.move_to_end(key)
        if len(self._facts) > self.max_facts:
            self._facts.popitem(last=False)


class _Versioned:
    def __init__(self, facts: OrderedDict[str, tuple[int, dict[str, Any]]]) -> None:
        self._facts = facts

    def get(self, key: str, default: Any = None) -> tuple[dict[str, Any], int] | Any:
        known = self._facts.get(key)
        return default if known is None else (known[1], known[0])
