"""P3: end-to-end latency from a change committed in Dataverse to its arrival in Finance.

The full stack runs (`dualwrite.stack.Stack`: both emulators seeded, both sources, the worker,
both sinks) on a broker of its own. Writers create projects in the Dataverse emulator through
its Web API, paced at a target rate (or as fast as they can, for a burst of projects with three
tasks each); a change's commit time is the writer's clock when the emulator answered the write.
Its arrival time is the ``ts_ms`` of the Finance emulator's change-feed entry that created the
row (same machine, same clock), so how often the bench reads the feed does not change the
figure. Before each phase one warm-up project with a task is written and awaited: the figure is
for tables the source polls at their active interval (the label shows it with the idle back-off;
a change on a table idle for long is first seen up to that back-off later, not measured here).

The same run gives the round-trip figure: records appended to every topic (CDC, gate,
changelogs, commands, acks, echoes, checkpoints) per change during the first paced phase.
"""

from __future__ import annotations

import math
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.offsets import end_offsets, produced, settled_end_offsets
from bench.polling import wait_for_snapshots
from dualwrite.apiclient import ApiSession
from dualwrite.kafka import LocalKafka
from dualwrite.ports import free_port
from dualwrite.scenario import Scenario
from dualwrite.stack import Stack, StackConfig
from streams.maps import default_registry
from topics import apply_topics, catalog

__all__ = ["EndToEnd", "Phase", "percentile", "run_latency_bench"]

TASKS_PER_PROJECT = 3
# An arrival is a Finance row: (entity, ProjectId, Task or "").
Arrival = tuple[str, str, str]


def percentile(values: Sequence[float], share: float) -> float:
    """Nearest-rank percentile (no interpolation: the value some record really had)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


@dataclass(frozen=True)
class Phase:
    """One measured phase: the latencies of the records that arrived, and how many did not."""

    label: str
    target_rate: float | None  # changes/s asked for; None for a burst
    writes: int
    write_seconds: float  # first to last write answer
    latencies: tuple[float, ...]  # seconds, commit to arrival
    last_arrival_after_last_write: float
    missing: int

    @property
    def achieved_rate(self) -> float:
        """Writes per second between the first and the last answer (n writes, n - 1 gaps)."""
        return (self.writes - 1) / max(self.write_seconds, 1e-3)

    @property
    def p50(self) -> float:
        return percentile(self.latencies, 0.50)

    @property
    def p99(self) -> float:
        return percentile(self.latencies, 0.99)


@dataclass(frozen=True)
class EndToEnd:
    phases: tuple[Phase, ...]
    poll_interval_s: float
    poll_idle_max_s: float
    roundtrip_records_per_change: float


class _Writer:
    """Creates projects (and their tasks) in Dataverse; one API session per thread."""

    def __init__(self, stack: Stack, prefix: str) -> None:
        self.stack = stack
        self.prefix = prefix
        self._local = threading.local()
        probe = Scenario(stack.dataverse(), stack.finance())
        self.company_id, self.customer_id = probe.company_id(), probe.customer_id()

    def _session(self) -> ApiSession:
        if not hasattr(self._local, "dv"):
            self._local.dv = self.stack.dataverse()
        return self._local.dv  # type: ignore[no-any-return]

    def _post(self, table: str, body: dict[str, Any]) -> tuple[Any, float]:
        resp = self._session().request("POST", table, headers={"Prefer": "return=representation"}, json=body)
        at = time.time()
        if resp.status_code >= 400:
            raise RuntimeError(f"create in {table} failed: HTTP {resp.status_code} {resp.text[:200]}")
        return resp.json(), at

    def project(self, number: str, tasks: int = 0) -> dict[Arrival, float]:
        """Create project ``number`` and ``tasks`` tasks of it; commit time per Finance row."""
        row, at = self._post("msdyn_projects", {
            "msdyn_projectnumber": number, "msdyn_subject": f"Latency {number}",
            "msdyn_owningcompany@odata.bind": f"/cdm_companies({self.company_id})",
            "msdyn_customer@odata.bind": f"/accounts({self.customer_id})",
            "msdyn_scheduledstart": "2026-12-01", "msdyn_finish": "2027-06-30", "statecode": 0})
        out = {("ProjectsV2", number, ""): at}
        for t in range(1, tasks + 1):
            _task, at = self._post("msdyn_projecttasks", {
                "msdyn_project@odata.bind": f"/msdyn_projects({row['msdyn_projectid']})",
                "msdyn_wbsid": str(t), "msdyn_subject": f"Task {t}", "msdyn_isleaf": True})
            out[("ProjectTasks", number, str(t))] = at
        return out


class _FinanceFeed:
    """Reads the Finance change feed from a position: the first create time of each row."""

    def __init__(self, fo: ApiSession) -> None:
        self.fo = fo
        self.since = self._get({"top": "0"})["watermark"]

    def _get(self, params: dict[str, str]) -> dict[str, Any]:
        resp = self.fo.request("GET", "ChangeFeed", params={"entities": "ProjectsV2,ProjectTasks", **params})
        resp.raise_for_status()
        return resp.json()  # type: ignore[no-any-return]

    def arrivals(self, wanted: set[Arrival], timeout: float) -> dict[Arrival, float]:
        """Until every wanted row was created in Finance, or ``timeout`` seconds."""
        seen: dict[Arrival, float] = {}
        deadline = time.monotonic() + timeout
        while len(seen) < len(wanted) and time.monotonic() < deadline:
            body = self._get({"since": str(self.since), "top": "10000"})
            for entry in body["value"]:
                key = entry.get("key") or {}
                row: Arrival = (entry["entity"], str(key.get("ProjectId", "")), str(key.get("Task", "")))
                if entry["op"] != "d" and row in wanted and row not in seen:
                    seen[row] = entry["ts_ms"] / 1000.0
            self.since = body["watermark"]
            if not body.get("@odata.nextLink") and len(seen) < len(wanted):
                time.sleep(0.5)
        return seen


def _phase(writer: _Writer, feed: _FinanceFeed, label: str, numbers: list[str], rate: float | None,
           tasks: int, threads: int, drain_s: float) -> Phase:
    """Write ``numbers`` (paced at ``rate``, or all at once), then collect their arrivals."""
    start = time.monotonic() + 0.2

    def one(i: int) -> dict[Arrival, float]:
        if rate is not None:
            time.sleep(max(0.0, start + i / rate - time.monotonic()))
        return writer.project(numbers[i], tasks)

    committed: dict[Arrival, float] = {}
    with ThreadPoolExecutor(threads) as pool:
        for result in pool.map(one, range(len(numbers))):
            committed.update(result)
    first, last = min(committed.values()), max(committed.values())
    arrived = feed.arrivals(set(committed), drain_s)
    latencies = tuple(arrived[row] - at for row, at in committed.items() if row in arrived)
    return Phase(label, rate, len(committed), last - first, latencies,
                 (max(arrived.values()) - last) if arrived else math.inf, len(committed) - len(arrived))


def _warm(writer: _Writer, feed: _FinanceFeed, prefix: str) -> None:
    """One project and a task written and awaited: both source tables are polled at the active
    interval (an idle one waits up to the idle maximum) and the worker knows the company."""
    number = f"{prefix}-W{uuid.uuid4().hex[:6]}"
    wanted = set(writer.project(number, tasks=1))
    if len(feed.arrivals(wanted, 120)) < len(wanted):
        raise RuntimeError(f"warm-up project {number} did not reach Finance within 120 s")


def run_latency_bench(workdir: Path, rates: Sequence[float] = (50.0, 200.0), seconds: float = 10.0,
                      burst_projects: int = 200, poll_interval_s: float = 0.25,
                      poll_idle_max_s: float = 10.0, threads: int = 8,
                      progress: Callable[[str], None] = lambda _msg: None) -> EndToEnd:
    """Paced phases (``seconds`` long at each rate), then a burst of ``burst_projects`` projects
    with three tasks each, on a stack of its own."""
    kafka = LocalKafka(workdir / "kafka", port=free_port(), controller_port=free_port())
    kafka.up(timeout=120)
    polling = {f"DUALWRITE_{system}__{name}": str(value) for system in ("DATAVERSE", "FINANCE")
               for name, value in (("POLL_INTERVAL_S", poll_interval_s), ("POLL_IDLE_MAX_S", poll_idle_max_s))}
    stack = Stack(StackConfig(workdir=workdir, kafka_bootstrap=kafka.bootstrap), polling)
    try:
        registry = default_registry()
        apply_topics({"bootstrap.servers": kafka.bootstrap}, catalog(partitions=3, cdc_tables=registry.cdc_tables()))
        stack.start_emulators()
        stack.start_pipeline()
        wait_for_snapshots(kafka.bootstrap, len(registry.cdc_tables()))
        writer, feed = _Writer(stack, "P3"), _FinanceFeed(stack.finance())
        phases: list[Phase] = []
        roundtrip = math.nan
        for n, rate in enumerate(rates):
            progress(f"latency at {rate:g} changes/s")
            # Settled before the warm-up, not after it: a settle can take longer than a table
            # stays hot, and a phase that began on idle tables waited for their idle polls (p50
            # 6 s, p99 10.5 s at 50/s in three runs of four). What the warm-up appends after
            # its arrival (its acks and echoes, a few dozen records) counts in the round trip:
            # a few hundredths of a record per change.
            settled_end_offsets(kafka.bootstrap)
            _warm(writer, feed, f"R{n}")
            before = end_offsets(kafka.bootstrap)
            numbers = [f"R{n}-{i:05d}" for i in range(int(rate * seconds))]
            phases.append(_phase(writer, feed, f"{rate:g}/s", numbers, rate, 0, threads, 120))
            if n == 0:
                roundtrip = produced(before, settled_end_offsets(kafka.bootstrap)) / len(numbers)
        progress(f"latency of a burst of {burst_projects} projects with {TASKS_PER_PROJECT} tasks each")
        _warm(writer, feed, "B")
        numbers = [f"B-{i:05d}" for i in range(burst_projects)]
        phases.append(_phase(writer, feed, "burst", numbers, None, TASKS_PER_PROJECT, threads, 180))
        return EndToEnd(tuple(phases), poll_interval_s, poll_idle_max_s, roundtrip)
    finally:
        stack.stop()
        kafka.down()
