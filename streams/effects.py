"""What handling one gate message does, as plain values: the gate's effects.

The gate's handlers (`streams.handlers`) decide; they never touch a table, a topic or a metric.
Each returns a list of these frozen effects, in the order they must happen, and
`streams.gatekeeper.Gatekeeper.apply` performs them one by one (that module says why the order
keeps replay safe).

    Put / Delete          a table write (``facts``, ``targets``, ``parked``, ``pairs``, ``states``;
                          ``flood``: the in-memory run counts of `streams.flood`, and
                          ``published``: the key facts sent in this run, `streams.published`,
                          neither changelogged)
    GateSend              a gate message to a gate key (optionally one partition)
    CommandSend           an encoded command to ``sync.commands.<target>``
    DeadLetter            a change to ``sync.dlq`` with its `topics.dlq_headers`
    ControlSend           a map's run state to ``sync.control``
    Count                 a metric increment (`streams.metrics`)
    Log                   a log line (conflict losses, a map paused)
    Learn / Forget / Fill the `streams.factview.FactView` mirror of ``facts``

`Recorder` is the state a handler reads while it produces effects: a read-only view of the
tables with the handler's own writes laid over it, so a handler that walks several steps on one
key (a change collecting a fact and then emitting, a release forwarding several changes that
each may pause their map) reads what it has already decided, exactly as it did when it wrote
the tables directly.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from prometheus_client import Counter
from pydantic import BaseModel

from topics import MapState

__all__ = [
    "FLOOD",
    "CommandSend",
    "ControlSend",
    "Count",
    "DeadLetter",
    "Delete",
    "Effect",
    "Fill",
    "Forget",
    "GateSend",
    "Learn",
    "Log",
    "Put",
    "Recorder",
    "Tables",
]

FLOOD = "flood"  # pseudo-table: map -> rejected changes in a row (`streams.flood.FloodGuard.runs`)

Tables = Mapping[str, Mapping[str, Any]]


@dataclass(frozen=True)
class Put:
    table: str
    key: str
    value: Any


@dataclass(frozen=True)
class Delete:
    table: str
    key: str


@dataclass(frozen=True)
class GateSend:
    key: str
    msg: BaseModel
    partition: int | None = None


@dataclass(frozen=True)
class CommandSend:
    target: str
    key: str
    payload: bytes


@dataclass(frozen=True)
class DeadLetter:
    key: bytes
    value: bytes
    headers: tuple[tuple[str, bytes], ...]


@dataclass(frozen=True)
class ControlSend:
    state: MapState


@dataclass(frozen=True)
class Count:
    metric: Counter
    labels: tuple[str, ...]
    amount: int = 1


@dataclass(frozen=True)
class Log:
    level: int
    message: str
    args: tuple[Any, ...] = ()


@dataclass(frozen=True)
class Learn:
    key: str
    value: dict[str, Any]
    version: int | None


@dataclass(frozen=True)
class Forget:
    key: str


@dataclass(frozen=True)
class Fill:
    key: str
    value: dict[str, Any]


Effect = (Put | Delete | GateSend | CommandSend | DeadLetter | ControlSend | Count | Log | Learn | Forget
          | Fill)

_UNWRITTEN = object()


class Recorder:
    """Effects produced so far, and the tables as they will be once those are applied."""

    def __init__(self, tables: Tables) -> None:
        self._tables = tables
        self._written: dict[tuple[str, str], Any] = {}
        self.effects: list[Effect] = []

    def get(self, table: str, key: str) -> Any:
        value = self._written.get((table, key), _UNWRITTEN)
        if value is _UNWRITTEN:
            return self._tables.get(table, {}).get(key)  # a table not given reads as empty
        return value

    def put(self, table: str, key: str, value: Any) -> None:
        self._written[(table, key)] = value
        self.effects.append(Put(table, key, value))

    def delete(self, table: str, key: str) -> None:
        self._written[(table, key)] = None  # tables read a missing key as None
        self.effects.append(Delete(table, key))

    def add(self, *effects: Effect) -> None:
        self.effects.extend(effects)
