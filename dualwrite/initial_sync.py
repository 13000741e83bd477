"""Initial sync: every current row of a map's source table onto its CDC topic, resumable.

Dual-write's initial sync copies at most 500,000 rows in at most 24 hours per run and starts over
when it fails. Here a map's source table is snapshotted by the source engine itself
(`SourceEngine.snapshot`: the change position is captured BEFORE the first row is read, rows go
out as ``op: "r"``, the newest marked ``source.snapshot = "last"``), so there is no second pager
and no row cap, and the processor and sinks treat the rows as any snapshot.

- **Order.** Maps run in registry order, which is dependency order (resource roles first, as
  dual-write requires), whatever order ``--map`` names them in (`plan`).
- **Resumable.** After Kafka acknowledged a page's events, its cursor (`Page.resume`: the
  captured position and where the page ended) and the counts so far are written durably to
  ``sync.source-offsets`` under the task's own key, ``initial-sync/<map>/<table>/<companies>``
  (`SyncTask.checkpoint_table`), never the live source's key. A killed run continues after the
  last acknowledged page with the position captured by the first run, so nothing changed
  meanwhile is lost; the pages after that checkpoint are emitted again (duplicates with the
  same ``source.version``, dropped downstream by version). A finished task is not run again.
- **Hand-over.** The snapshot never moves a live source's streaming checkpoint. When it is done
  and the table has no streaming checkpoint yet, the captured position is written as one
  (`SourceOffset.snapshot_done`), so ``dualwrite source`` streams from it instead of taking a
  snapshot of its own: no gap (the position predates every row read) and no second copy. A
  table that has one keeps it: its source streams from there, before or after the captured
  position, and either way every change after the snapshot's position is emitted (duplicates
  of the overlap are dropped downstream by version). A source running without a checkpoint
  while the sync finishes may overwrite the hand-over with its own later one: still no gap.
- **Companies.** ``--company`` keeps the rows whose ``source.company`` (the company column the
  map's `Endpoint` declares, a Dataverse lookup resolved to its code) is one of them, case
  aside; a table without a declared company column is read whole. Such a partial sync hands no
  checkpoint over (the source's own snapshot still brings the other companies).
- **The master rule** (`select`). When the map's source is the master (or none is named) every
  row flows and overwrites the target. When its target is the master, the target rows are
  compared first with reconcile's own comparison (`dualwrite.reconcile`: the processor's
  transform, both tables read once, in memory); a row the target already holds is not emitted
  (``kept``), and counted ``differing`` when some mapped field differs, so only rows missing
  on the target flow.

Pages are read one ahead (the next request runs while a page waits for Kafka). The snapshot's
images go to the source's before-image file (`dualwrite source` settings), so the first update
streamed after the hand-over carries its ``before``. Maps sharing a source table are synced one
after the other; the processor routes the first one's rows to every map of the table, so the
later copies are dropped by version.

Errors worth one line and exit 2 (`InitialSyncError`): an unknown map or company, an API that
cannot be reached or read, a Kafka that does not acknowledge.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from typing import Protocol, TypeVar

from confluent_kafka import KafkaException
from pydantic import BaseModel, ValidationError

from connectors.common.errors import ConnectorError, PositionExpired
from connectors.common.http import ApiClient, rejection
from connectors.common.source import (
    DEAD_LETTERED,
    EMITTED,
    Change,
    ChangeReader,
    SourceEngine,
    UnreadableAnswer,
)
from dualwrite.apiclient import ApiError
from dualwrite.reconcile import Facts, ReconcileError, Tables, compare, expect
from streams.maps import MapRegistry
from streams.maps.model import TableMap
from streams.pending import split_record_ref
from topics import SourceOffset, System

__all__ = [
    "DIFFERING",
    "KEPT",
    "OTHER_COMPANY",
    "InitialSync",
    "InitialSyncError",
    "MasterDecision",
    "Summary",
    "SyncState",
    "SyncTask",
    "master_decision",
    "plan",
    "reconciled_decision",
    "resume_state",
    "select",
]

log = logging.getLogger(__name__)
T = TypeVar("T")

CHECKPOINT_PREFIX = "initial-sync"
KEPT = "kept"  # on the target already, which is the master: not emitted
DIFFERING = "differing"  # kept, and some mapped field differs from the source row
OTHER_COMPANY = "other_company"  # not one of --company
LABELS = (EMITTED, KEPT, DIFFERING, OTHER_COMPANY, DEAD_LETTERED)


class InitialSyncError(Exception):
    """What stops an initial sync before or while it runs: one line for the operator."""


@dataclass(frozen=True)
class SyncTask:
    """One map's source table to snapshot, for some companies (empty: all)."""

    map: str
    system: System
    table: str
    companies: tuple[str, ...] = ()  # case-folded, sorted; empty when not filtered
    target_is_master: bool = False

    @property
    def checkpoint_table(self) -> str:
        """The task's key on ``sync.source-offsets``: apart from every live source's table key."""
        return f"{CHECKPOINT_PREFIX}/{self.map}/{self.table}/{'+'.join(self.companies) or '*'}"


def plan(registry: MapRegistry, names: Sequence[str], companies: Collection[str] = (),
         master: System | None = None) -> list[SyncTask]:
    """The tasks for the named maps, in registry (dependency) order; `InitialSyncError` for a
    name the registry does not hold. ``companies`` apply to tables that declare a company."""
    unknown = [n for n in names if n not in registry]
    if unknown:
        known = ", ".join(m.name for m in registry.maps)
        raise InitialSyncError(f"no map {', '.join(unknown)}; the maps are: {known}")
    wanted = sorted({c.casefold() for c in companies})
    tasks = []
    for m in registry.maps:
        if m.name not in names:
            continue
        endpoint = registry.endpoint(m.source.system, m.source.table)
        scoped = bool(endpoint.company or endpoint.company_lookup)
        tasks.append(SyncTask(m.name, m.source.system, m.source.table,
                              tuple(wanted) if scoped else (), master == m.target.system))
    return tasks


@dataclass(frozen=True)
class MasterDecision:
    """Source record ids the target already holds (not emitted) and those among them whose
    target row differs."""

    kept: frozenset[str] = frozenset()
    differing: frozenset[str] = frozenset()


def master_decision(m: TableMap, in_sync: Sequence[str | None], different: Sequence[str | None]) -> MasterDecision:
    """The rows the target, as master, keeps, from the source ids of ``m``'s in-sync and
    different rows. A fan-out map's copy ``<id>@<member>`` keeps its source row whole (emitting
    it would overwrite every copy)."""
    fanned = m.fan_out is not None

    def base(ids: Sequence[str | None]) -> set[str]:
        return {split_record_ref(sid, fanned)[0] for sid in ids if sid is not None}

    differing = base(different)
    return MasterDecision(frozenset(base(in_sync) | differing), frozenset(differing))


def reconciled_decision(registry: MapRegistry, tables: Tables, m: TableMap) -> MasterDecision:
    """Compare ``m``'s source rows with its target rows as `dualwrite reconcile` does (the
    processor's transform, target record keys) and keep what the target holds."""
    facts = Facts(registry, tables)
    expected = expect(m, tables.rows(m.source.system, m.source.table), facts)
    report = compare(m, expected, tables.rows(m.target.system, m.target.table))
    return master_decision(m, [expected.rows[k][0] for k in report.in_sync],
                           [d.source_id for d in report.different])


def select(change: Change, companies: frozenset[str], decision: MasterDecision) -> str:
    """The label of one snapshot row: `EMITTED`, or why it is left out."""
    if companies and (change.company or "").casefold() not in companies:
        return OTHER_COMPANY
    if change.key in decision.kept:
        return DIFFERING if change.key in decision.differing else KEPT
    return EMITTED


class SyncState(BaseModel):
    """A task's checkpoint (JSON in `SourceOffset.position`): the cursor to resume after, the
    counts of the pages it covers, and, once done, the captured position."""

    cursor: str = ""
    done: bool = False
    position: str = ""
    counts: dict[str, int] = {}

    def add(self, tally: Counter[str]) -> None:
        for label, n in tally.items():
            self.counts[label] = self.counts.get(label, 0) + n

    @property
    def read(self) -> int:
        return sum(self.counts.values())

    def offset(self, task: SyncTask, prefix: str, ts_ms: int) -> SourceOffset:
        return SourceOffset(system=task.system, table=prefix + task.checkpoint_table,
                            position=self.model_dump_json(), snapshot_done=self.done, ts_ms=ts_ms)


def resume_state(stored: SourceOffset | None) -> SyncState:
    """Where a task starts: from zero without a checkpoint or with one that is not ours to read
    (anyone who can produce to the topic can write one: a fresh start loses nothing), after the
    stored cursor otherwise."""
    if stored is None:
        return SyncState()
    try:
        return SyncState.model_validate_json(stored.position)
    except ValidationError:
        log.warning("initial-sync checkpoint %s is unreadable; starting that table over", stored.table[:200])
        return SyncState()


@dataclass
class Summary:
    """One task's outcome, for the summary table."""

    task: SyncTask
    state: SyncState
    resumed: bool = False  # continued after an earlier run's checkpoint
    before: bool = False  # finished by an earlier run: nothing read now
    handed_over: bool = False  # its position became the table's streaming checkpoint

    def count(self, label: str) -> int:
        return self.state.counts.get(label, 0)


class Reporter(Protocol):
    """Progress of the running task (a rich progress bar in the CLI)."""

    def start(self, task: SyncTask, total: int | None, done: int) -> None: ...

    def advance(self, task: SyncTask, rows: int) -> None: ...


class Quiet:
    """A `Reporter` that shows nothing."""

    def start(self, task: SyncTask, total: int | None, done: int) -> None:
        pass

    def advance(self, task: SyncTask, rows: int) -> None:
        pass


Decide = Callable[[TableMap], MasterDecision]  # blocking: run in a thread


class InitialSync:
    """Runs tasks through one source engine per system (`SourceEngine.snapshot`, no streaming
    checkpoint of its own) and checkpoints them under their own keys."""

    def __init__(self, registry: MapRegistry, engines: Mapping[System, SourceEngine], decide: Decide,
                 reporter: Reporter | None = None) -> None:
        self.registry = registry
        self.engines = engines
        self.decide = decide
        self.reporter = reporter or Quiet()

    async def run(self, tasks: Sequence[SyncTask], restart: bool = False) -> list[Summary]:
        """Every task in order; `InitialSyncError` when an API or Kafka fails past its retries
        (what was acknowledged stays checkpointed: run again to resume)."""
        with frozen_heap():
            await self.check_companies(tasks)
            return [await self.run_task(task, restart) for task in tasks]

    async def check_companies(self, tasks: Sequence[SyncTask]) -> None:
        """Every ``--company`` must be a company of the systems it filters."""
        for system in sorted({t.system for t in tasks if t.companies}):
            wanted = {c for t in tasks if t.system == system for c in t.companies}
            known = await self._guard(f"{system} companies", known_companies(self.engines[system].reader, system))
            unknown = sorted(wanted - known)
            if unknown:
                raise InitialSyncError(f"no company {', '.join(unknown)} in {system}; "
                                       f"its companies are: {', '.join(sorted(known))}")

    async def run_task(self, task: SyncTask, restart: bool = False) -> Summary:
        engine = self.engines[task.system]
        prefix = engine.settings.checkpoint_table_prefix
        # The row count (for the progress) is asked while the checkpoints are read.
        counting = asyncio.ensure_future(count_rows(engine.reader, task.system, task.table))
        try:
            stored = await self._guard("reading checkpoints", engine.checkpoints.load(task.system))
        except BaseException:
            counting.cancel()
            raise
        state = SyncState() if restart else resume_state(stored.get(prefix + task.checkpoint_table))
        if state.done:
            counting.cancel()
            return Summary(task, state, before=True)
        summary = Summary(task, state, resumed=bool(state.cursor))
        decision = MasterDecision()
        if task.target_is_master:
            try:
                decision = await self._guard(f"{task.map}: comparing with the target (the master)",
                                             asyncio.to_thread(self.decide, self.registry[task.map]))
            except BaseException:
                counting.cancel()
                raise
        total = await counting
        self.reporter.start(task, total, state.read)

        async def on_page(cursor: str, tally: Counter[str]) -> None:
            state.add(tally)
            self.reporter.advance(task, sum(tally.values()))
            if cursor:  # the final pages are checkpointed below, with the position
                state.cursor = cursor
                await engine.checkpoints.save(state.offset(task, prefix, self._now_ms(engine)))

        # Nothing to leave out (every company, no rows kept by the master): every row is emitted
        # without a question asked per row.
        keep = partial(select, companies=frozenset(task.companies), decision=decision) \
            if task.companies or decision.kept else None
        try:
            position = await self._guard(f"{task.system} {task.table}", engine.snapshot(
                task.table, resume=state.cursor, select=keep, on_page=on_page, checkpoint=False, read_ahead=True))
        except PositionExpired as exc:  # an untrusted or expired cursor: from zero loses nothing
            log.warning("initial-sync %s: cannot resume (%s); starting the table over",
                        task.checkpoint_table, exc)
            state.cursor, state.counts, summary.resumed = "", {}, False
            position = await self._guard(f"{task.system} {task.table}", engine.snapshot(
                task.table, select=keep, on_page=on_page, checkpoint=False, read_ahead=True))
        state.cursor, state.done, state.position = "", True, position
        # The task's final checkpoint and the hand-over are independent: written together. Were
        # the first to fail, the next run does the task again and finds the table handed over.
        _, summary.handed_over = await asyncio.gather(
            self._guard("writing the checkpoint", engine.checkpoints.save(
                state.offset(task, prefix, self._now_ms(engine)))),
            self._guard("handing over", self.hand_over(engine, task, position)))
        return summary

    async def hand_over(self, engine: SourceEngine, task: SyncTask, position: str) -> bool:
        """Make ``position`` the table's streaming checkpoint when it has none (True); a live
        source's checkpoint is never moved. A sync of some companies only hands nothing over:
        the source's own snapshot must still bring the other companies' rows."""
        if task.companies:
            return False
        key = engine.settings.checkpoint_table_prefix + task.table
        current = (await engine.checkpoints.load(task.system)).get(key)
        if current is not None and current.snapshot_done:
            return False
        await engine.checkpoints.save(SourceOffset(system=task.system, table=key, position=position,
                                                   snapshot_done=True, ts_ms=self._now_ms(engine)))
        return True

    @staticmethod
    def _now_ms(engine: SourceEngine) -> int:
        return int(engine.clock.time() * 1000)

    @staticmethod
    async def _guard(what: str, work: Awaitable[T]) -> T:
        """``work``, with an API or Kafka failure past its retries as one `InitialSyncError`."""
        try:
            return await work
        except PositionExpired:
            raise
        except (ConnectorError, KafkaException, ReconcileError, ApiError) as exc:
            raise InitialSyncError(f"{what}: {type(exc).__name__}: {exc}"[:500]) from None


@contextmanager
def frozen_heap() -> Iterator[None]:
    """The objects alive before a sync (every module, class and map of the process) left out
    of the garbage collector's full passes while it runs (`gc.freeze`), and given back after.

    A sync allocates a few objects per row, thousands a page, so the collector runs often; a
    full pass walks every object of the process, 60-70 ms here each time, as much as reading
    a few thousand rows. None of those objects becomes garbage because of the sync. A process
    that froze its heap itself keeps it frozen."""
    if gc.get_freeze_count():
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


COMPANY_LISTS: dict[System, tuple[str, str, dict[str, str]]] = {
    "dataverse": ("cdm_companies", "cdm_companycode", {"$select": "cdm_companycode"}),
    "finance": ("LegalEntities", "dataAreaId", {"$select": "dataAreaId", "cross-company": "true"}),
}


async def known_companies(reader: ChangeReader, system: System) -> set[str]:
    """The company codes of ``system`` (Dataverse ``cdm_companies``, Finance ``LegalEntities``),
    case-folded."""
    table, column, params = COMPANY_LISTS[system]
    api = _api(reader)
    if api is None:
        raise InitialSyncError(f"the {system} reader has no API client to list companies")
    response = await api.request("GET", table, params=params)
    if response.status_code != 200:
        raise rejection(response, f"GET {table}")
    try:
        rows = response.json().get("value", [])
    except (ValueError, AttributeError):
        raise UnreadableAnswer(f"GET {table}: answer is not a JSON object") from None
    return {str(r[column]).casefold() for r in rows if isinstance(r, dict) and r.get(column)}


async def count_rows(reader: ChangeReader, system: System, table: str) -> int | None:
    """The table's row count when the API gives one (``$count=true``), for the ETA; None
    otherwise (the progress then shows rows and rate only)."""
    params = {"$count": "true", "$top": "1", **({"cross-company": "true"} if system == "finance" else {})}
    api = _api(reader)
    if api is None:
        return None
    try:
        response = await api.request("GET", table, params=params)
        count = response.json().get("@odata.count") if response.status_code == 200 else None
    except (ConnectorError, ValueError, AttributeError):
        return None
    return count if isinstance(count, int) and not isinstance(count, bool) and count >= 0 else None


def _api(reader: ChangeReader) -> ApiClient | None:
    """The reader's API client (both readers have one; a test's scripted reader has none)."""
    api = getattr(reader, "api", None)
    return api if isinstance(api, ApiClient) else None
