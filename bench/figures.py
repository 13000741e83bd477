"""The one table `dualwrite bench` prints, and the JSON `--json FILE` writes.

Every figure stands next to its peer (a rival measured in the same run, the figure before the
redesign, or a budget), the ratio of the two and the issue's goal, so one table tells whether a
goal is met without another document. A figure not measured has no value and says why; it is
still a row, so a missing figure is visible rather than silently absent.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Literal

from rich.table import Table

__all__ = ["COLUMNS", "Figure", "figures_json", "figures_table", "not_measured", "restarts_included"]

COLUMNS = ("figure", "dualwrite", "peer", "ratio", "goal")
RatioKind = Literal["x", "%", ""]


@dataclass(frozen=True)
class Figure:
    """One row: ``value`` and ``peer`` are numbers in ``unit`` (None: not measured / no peer);
    ``text`` replaces the formatted value when one number cannot say it (``p50 / p99``);
    ``note`` says why a figure was not measured."""

    key: str
    label: str
    value: float | None
    unit: str = ""
    peer: float | None = None
    peer_label: str = ""
    ratio_kind: RatioKind = ""
    goal: str = ""
    text: str = ""
    note: str = ""
    detail: dict[str, float | list[float]] = field(default_factory=dict)  # more numbers, for the JSON only

    @property
    def ratio(self) -> float | None:
        if self.value is None or self.peer is None or self.peer == 0 or not self.ratio_kind:
            return None
        return self.value / self.peer

    def cells(self) -> tuple[str, str, str, str, str]:
        """The five printed cells, in `COLUMNS` order."""
        value = self.text or (_number(self.value, self.unit) if self.value is not None
                              else f"not measured{': ' + self.note if self.note else ''}")
        peer = _number(self.peer, self.unit) if self.peer is not None else ""
        if self.peer_label:
            peer = f"{peer} ({self.peer_label})" if peer else self.peer_label
        ratio = self.ratio
        shown = "" if ratio is None else (f"{ratio:.2f}x" if self.ratio_kind == "x" else f"{ratio:.1%}")
        return (self.label, value, peer, shown, self.goal)

    def as_dict(self) -> dict[str, object]:
        return {**asdict(self), "ratio": self.ratio}


def _number(value: float, unit: str) -> str:
    text = f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}" if abs(value) < 1 else f"{value:.2f}"
    return f"{text} {unit}".strip()


def restarts_included(count: int, *, suffix: str = " ({})") -> str:
    """What a label says when the supervisor restarted the worker during a measurement (its
    watchdog exits 75 when it must re-read its input): the figure includes those restarts.
    Nothing without restarts; ``suffix`` places the words."""
    return suffix.format(f"{count} worker restart{'s' if count > 1 else ''} included") if count else ""


def not_measured(key: str, label: str, goal: str, why: str) -> Figure:
    return Figure(key=key, label=label, value=None, goal=goal, note=why)


def figures_table(figures: Iterable[Figure], title: str) -> Table:
    table = Table(title=title)
    for column in COLUMNS:
        table.add_column(column, justify="left" if column in ("figure", "goal") else "right")
    for figure in figures:
        table.add_row(*figure.cells())
    return table


def figures_json(figures: Sequence[Figure], meta: dict[str, object]) -> str:
    """``{"meta": {...}, "figures": [{key, label, value, unit, peer, ratio, goal, ...}]}``."""
    return json.dumps({"meta": meta, "figures": [f.as_dict() for f in figures]}, indent=2)
