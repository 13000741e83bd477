"""When bad records stop being exceptions: pause the map instead of draining it into the DLQ.

A map whose changes fail to transform ``limit`` times in a row (no good change in between) is
broken, not fed a few bad rows: a wrong value map after a deployment, a lookup that changed
shape. `FloodGuard` counts per map and says when to pause it; the caller publishes the pause on
``sync.control``, where every worker (and `dualwrite maps list`) sees it, and parks that map's
failing changes until `dualwrite maps resume` (after the map is fixed) sends them round again.
Counts live in memory: a restart starts them from zero, which errs on the side of the DLQ.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["FloodGuard"]


@dataclass
class FloodGuard:
    limit: int  # 0: never pause
    runs: dict[str, int] = field(default_factory=dict)

    def failed(self, map_name: str) -> bool:
        """Count a rejected change; True exactly once, when the run reaches the limit."""
        run = self.runs.get(map_name, 0) + 1
        self.runs[map_name] = run
        return self.limit > 0 and run == self.limit

    def succeeded(self, map_name: str) -> None:
        if self.runs.get(map_name):
            self.runs[map_name] = 0
