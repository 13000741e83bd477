"""`dualwrite maps`: the table maps a worker runs and their state on ``sync.control``.

``sync.control`` is compacted and keyed by map name; its latest `MapState` per map says whether
the map runs. No record means running. The worker's ``control`` agent applies a new state: a
paused map's changes park in the gate and are released, in order, on resume.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Literal

from connectors.common.kafka import KafkaConfig, read_compacted
from dualwrite.ops.errors import OpsError
from dualwrite.ops.kafka import produce_records, reaching, require_topic
from streams.maps import MapRegistry, TableMap
from topics import DecodeError, MapState, decode_model, encode

__all__ = [
    "CONTROL_TOPIC",
    "MapRow",
    "UnknownMap",
    "decode_states",
    "map_row",
    "map_rows",
    "read_states",
    "resolve",
    "set_state",
]

CONTROL_TOPIC = "sync.control"


class UnknownMap(OpsError):
    exit_code = 2

    def __init__(self, name: str, known: list[str]) -> None:
        super().__init__(f"unknown map {name!r}. Maps: {', '.join(known)} "
                         "(see `dualwrite maps list`).")
        self.name = name
        self.known = known


@dataclass(frozen=True)
class MapRow:
    """One line of `dualwrite maps list`."""

    name: str
    source: str  # "dataverse msdyn_projects"
    target: str  # "finance ProjectsV2"
    direction: str  # "to_finance"
    two_way: list[str]  # target fields that also flow back
    depends_on: list[str]  # what a row of this map waits for before it is written
    state: str  # running | paused
    reason: str | None
    since_ms: int | None  # when the state was set (None: never set, running by default)

    def as_json(self) -> dict[str, object]:
        return asdict(self)


def resolve(registry: MapRegistry, name: str) -> TableMap:
    """The map called ``name``, or `UnknownMap` listing every map (exit 2)."""
    if name not in registry:
        raise UnknownMap(name, [m.name for m in registry.maps])
    return registry[name]


def depends_on(m: TableMap) -> list[str]:
    """What a row of the map waits for: referenced target rows, other maps' keys, lookup rows."""
    out: list[str] = []

    def add(item: str) -> None:
        if item not in out:
            out.append(item)

    for dep in m.depends:  # target rows that must exist first
        add(f"{dep.entity} (via {', '.join(dep.lookups)})")
    for lk in m.lookups:  # rows whose facts the transform needs
        if lk.ref == "key":
            add(f"map {lk.table} ({lk.name})")
        elif lk.ref == "present":
            add(f"{lk.table} in {m.target.system} ({lk.name})")
        else:
            add(f"{lk.table} row ({lk.name})")
    return out


def map_row(m: TableMap, state: MapState | None) -> MapRow:
    return MapRow(
        name=m.name,
        source=f"{m.source.system} {m.source.table}",
        target=f"{m.target.system} {m.target.table}",
        direction=m.direction,
        two_way=[f.target for f in m.two_way],
        depends_on=depends_on(m),
        state=state.state if state is not None else "running",
        reason=state.reason if state is not None else None,
        since_ms=state.ts_ms if state is not None else None,
    )


def map_rows(registry: MapRegistry, states: dict[str, MapState]) -> list[MapRow]:
    """Every map of the registry, in its order, with its current state."""
    return [map_row(m, states.get(m.name)) for m in registry.maps]


def decode_states(raw: dict[bytes, bytes | None]) -> dict[str, MapState]:
    """Latest values of ``sync.control`` as states by map name (tombstones and unreadable
    values are left out: the map runs)."""
    out: dict[str, MapState] = {}
    for key, value in raw.items():
        if value is None:
            continue
        try:
            state = decode_model(MapState, value)
        except DecodeError:
            continue
        out[key.decode(errors="replace")] = state
    return out


def read_states(config: KafkaConfig, *, topic: str = CONTROL_TOPIC,
                timeout: float = 10.0) -> dict[str, MapState]:
    require_topic(config, topic, timeout)
    with reaching(config):
        return decode_states(read_compacted(config, topic, timeout=timeout))


def set_state(config: KafkaConfig, name: str, state: Literal["running", "paused"], *, reason: str | None = None,
              topic: str = CONTROL_TOPIC, timeout: float = 10.0,
              now_ms: int | None = None) -> MapState:
    """Publish the map's new state (keyed by map name) and wait until Kafka has it."""
    value = MapState(map=name, state=state,
                     reason=reason, ts_ms=now_ms if now_ms is not None else int(time.time() * 1000))
    require_topic(config, topic, timeout)
    produce_records(config, [(topic, name.encode(), encode(value), None)], timeout=timeout)
    return value
