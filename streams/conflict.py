"""Conflict resolution for two-way fields: the configured master wins a same-window conflict.

State per pair of records (one in each system), per two-way field:

    {"finance": <value there>, "dataverse": <value there>,
     "side": <side of the last accepted change>, "ts": <its source ts_ms>, "value": <it>}

A change from one side carries every mapped field; a two-way field whose value equals what that
side already held did not change there and is left out, so a stale value never overwrites a
newer edit made on the other side. A changed field conflicts when the other side changed it to
a different value within ``window_ms``: the master's value is kept, the loser is recorded.

Each field also remembers which source version of each side last decided it (``"<side>@"``)
and whether it was kept (``"<side>!"``): at-least-once delivery replays a change after a crash,
and a replay must reach the decision the original reached, not "unchanged on this side".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["Decision", "Loss", "resolve"]

Side = Literal["finance", "dataverse"]


@dataclass(frozen=True)
class Loss:
    field: str
    side: str
    value: Any
    winner_side: str
    winner_value: Any


@dataclass(frozen=True)
class Decision:
    state: dict[str, dict[str, Any]]
    keep: tuple[str, ...]
    drop: tuple[str, ...]
    losses: tuple[Loss, ...]


def resolve(state: dict[str, dict[str, Any]], side: Side, ts_ms: int, values: dict[str, Any],
            master: str | None, window_ms: int, version: int | None = None) -> Decision:
    """Which two-way ``values`` (field -> value from ``side``, at source ``version``) to write
    to the other side."""
    new = {k: dict(v) for k, v in state.items()}
    keep: list[str] = []
    drop: list[str] = []
    losses: list[Loss] = []
    for name, value in values.items():
        prev = new.get(name)
        if (version is not None and prev is not None and prev.get(f"{side}@") == version
                and prev.get(side) == value):
            (keep if prev.get(f"{side}!") else drop).append(name)  # a replay: same decision
            continue
        if prev is not None and side in prev and prev[side] == value:
            drop.append(name)  # unchanged on this side
            continue
        if (prev is not None and prev.get("side") not in (None, side)
                and abs(ts_ms - int(prev.get("ts", 0))) <= window_ms
                and prev.get("value") != value and master is not None and side != master):
            drop.append(name)
            losses.append(Loss(name, side, value, str(prev["side"]), prev.get("value")))
            new[name] = {**prev, side: value, f"{side}@": version, f"{side}!": False}
            continue
        if (prev is not None and prev.get("side") not in (None, side)
                and abs(ts_ms - int(prev.get("ts", 0))) <= window_ms
                and prev.get("value") != value):
            # We are the master: the other side's recent change loses.
            losses.append(Loss(name, str(prev["side"]), prev.get("value"), side, value))
        keep.append(name)
        new[name] = {"finance": value, "dataverse": value, "side": side, "ts": ts_ms, "value": value,
                     f"{side}@": version, f"{side}!": True}
    return Decision(state=new, keep=tuple(keep), drop=tuple(drop), losses=tuple(losses))
