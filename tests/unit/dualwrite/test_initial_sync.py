"""`dualwrite.initial_sync`: map order, company filter, resume decision, the master rule, and a
task run over a scripted reader (checkpoints in memory)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from connectors.common.source import DEAD_LETTERED, EMITTED, Page
from dualwrite.initial_sync import (
    DIFFERING,
    KEPT,
    OTHER_COMPANY,
    InitialSync,
    InitialSyncError,
    MasterDecision,
    SyncState,
    SyncTask,
    master_decision,
    plan,
    reconciled_decision,
    resume_state,
    select,
)
from streams.maps import default_registry
from tests.unit.connectors.test_snapshot_cursor import PagedReader, r
from tests.unit.connectors.test_source_engine import change, engine
from tests.unit.dualwrite import test_reconcile
from topics import SourceOffset, System

pytestmark = pytest.mark.unit

REGISTRY = default_registry()


def test_maps_run_in_registry_order_resource_roles_first() -> None:
    tasks = plan(REGISTRY, ["projects", "customers", "resource_roles"])
    assert [t.map for t in tasks] == ["resource_roles", "customers", "projects"]
    assert (tasks[1].system, tasks[1].table) == ("finance", "CustomersV3")


def test_an_unknown_map_is_refused_by_name() -> None:
    with pytest.raises(InitialSyncError, match="no map nope; the maps are: resource_roles"):
        plan(REGISTRY, ["customers", "nope"])


def test_companies_apply_only_to_tables_with_a_company_column() -> None:
    roles, customers = plan(REGISTRY, ["resource_roles", "customers"], ["USMF", "demf"])
    assert REGISTRY.endpoint(roles.system, roles.table).company is None
    assert roles.companies == () and roles.checkpoint_table == "initial-sync/resource_roles/bookableresourcecategories/*"
    assert customers.companies == ("demf", "usmf")
    assert customers.checkpoint_table == "initial-sync/customers/CustomersV3/demf+usmf"


def test_select_keeps_other_companies_out_case_aside() -> None:
    row = change("A-1", 1, "r", "true")
    row = type(row)(row.key, row.event.model_copy(update={"source": row.event.source.model_copy(
        update={"company": "USMF"})}))
    assert select(row, frozenset({"usmf"}), MasterDecision()) == EMITTED
    assert select(row, frozenset({"demf"}), MasterDecision()) == OTHER_COMPANY
    assert select(row, frozenset(), MasterDecision()) == EMITTED


def test_the_target_as_master_keeps_its_rows_and_counts_the_differing() -> None:
    m = REGISTRY["customers"]
    decision = master_decision(m, ["usmf|C-1", None], ["usmf|C-2"])
    assert decision == MasterDecision(frozenset({"usmf|C-1", "usmf|C-2"}), frozenset({"usmf|C-2"}))
    labels = [select(change(k, 1, "r", "true"), frozenset(), decision) for k in ("usmf|C-1", "usmf|C-2", "usmf|C-3")]
    assert labels == [KEPT, DIFFERING, EMITTED]
    assert plan(REGISTRY, ["customers"], master="dataverse")[0].target_is_master
    assert not plan(REGISTRY, ["customers"], master="finance")[0].target_is_master
    assert not plan(REGISTRY, ["customers"])[0].target_is_master


def test_the_master_rule_reads_reconciles_comparison() -> None:
    """Customers: US-001 in sync, US-002 differs, US-003 missing on the target (emitted)."""
    rows = test_reconcile.in_sync_rows()
    rows["accounts"][1]["name"] = "Renamed in Dataverse"
    rows["CustomersV3"].append({"dataAreaId": "usmf", "CustomerAccount": "US-003", "Name": "New"})
    decision = reconciled_decision(test_reconcile.REGISTRY, test_reconcile.Rows(**rows),
                                   test_reconcile.REGISTRY["t_customers"])
    assert decision == MasterDecision(frozenset({"usmf|US-001", "usmf|US-002"}), frozenset({"usmf|US-002"}))


def test_a_fan_out_copy_keeps_its_whole_source_row() -> None:
    m = REGISTRY["resource_roles"]
    assert m.fan_out is not None
    assert master_decision(m, ["role-1@usmf"], []).kept == frozenset({"role-1"})


def test_resume_decision() -> None:
    def stored(position: str) -> SourceOffset:
        return SourceOffset(system="finance", table="initial-sync/x/T/*", position=position, ts_ms=1)

    assert resume_state(None) == SyncState()
    state = SyncState(cursor="10:250", counts={EMITTED: 250})
    assert resume_state(stored(state.model_dump_json())) == state
    assert resume_state(stored("not json")) == SyncState()  # forged or foreign: from zero


class MemoryCheckpoints:
    def __init__(self, stored: dict[str, SourceOffset] | None = None) -> None:
        self.stored = dict(stored or {})
        self.saved: list[SourceOffset] = []

    async def load(self, system: System) -> dict[str, SourceOffset]:
        return {k: v for k, v in self.stored.items() if v.system == system}

    async def save(self, offset: SourceOffset) -> None:
        self.saved.append(offset)
        self.stored[offset.table] = offset


def runner(reader: PagedReader, stored: dict[str, SourceOffset] | None = None) -> tuple[InitialSync, MemoryCheckpoints]:
    source, _ = engine(reader)  # type: ignore[arg-type]
    checkpoints = MemoryCheckpoints(stored)
    source.checkpoints = checkpoints  # type: ignore[assignment]
    return InitialSync(REGISTRY, {"dataverse": source}, lambda m: MasterDecision()), checkpoints


TASK = SyncTask("resource_roles", "dataverse", "accounts")
PAGES = [Page([r("a", 1), r("b", 2)], "", True, resume="c1"), Page([r("c", 3)], "", True, resume="c2"),
         Page([r("d", 4)], "P", False)]


async def test_a_task_resumes_after_its_checkpoint_and_hands_over_to_streaming() -> None:
    earlier = SyncState(cursor="c1", counts={EMITTED: 2}).offset(TASK, "", 1)
    reader = PagedReader(PAGES)
    sync, checkpoints = runner(reader, {earlier.table: earlier})
    (summary,) = await sync.run([TASK])
    assert reader.resumed == ["c1"]
    assert summary.resumed and summary.handed_over
    assert summary.state.counts == {EMITTED: 4} and summary.state.done and summary.state.position == "P"
    assert [(o.table, o.snapshot_done) for o in checkpoints.saved] == [
        (TASK.checkpoint_table, False), (TASK.checkpoint_table, True), ("accounts", True)]
    assert checkpoints.stored["accounts"].position == "P"


async def test_a_live_sources_checkpoint_is_never_moved() -> None:
    live = SourceOffset(system="dataverse", table="accounts", position="S", ts_ms=1)
    sync, checkpoints = runner(PagedReader(PAGES), {"accounts": live})
    (summary,) = await sync.run([TASK])
    assert not summary.handed_over and checkpoints.stored["accounts"] == live


async def test_a_sync_of_some_companies_hands_no_checkpoint_over() -> None:
    """The source's own snapshot must still bring the other companies' rows."""
    sync, checkpoints = runner(PagedReader(PAGES))
    some = SyncTask("resource_roles", "dataverse", "accounts", companies=("usmf",))
    assert not await sync.hand_over(sync.engines["dataverse"], some, "P")
    assert "accounts" not in checkpoints.stored
    assert await sync.hand_over(sync.engines["dataverse"], TASK, "P")


async def test_a_finished_task_is_not_read_again_unless_restarted() -> None:
    done = SyncState(done=True, position="P", counts={EMITTED: 4, DEAD_LETTERED: 1}).offset(TASK, "", 1)
    reader = PagedReader(PAGES)
    sync, _ = runner(reader, {done.table: done})
    (summary,) = await sync.run([TASK])
    assert summary.before and reader.resumed == [] and summary.state.read == 5
    (again,) = await sync.run([TASK], restart=True)
    assert reader.resumed == [""] and again.state.counts == {EMITTED: 4}


def test_the_heap_is_frozen_while_a_sync_runs_and_given_back_after() -> None:
    import gc

    from dualwrite.initial_sync import frozen_heap

    assert gc.get_freeze_count() == 0
    with frozen_heap():
        assert gc.get_freeze_count() > 0  # the objects alive before the sync: out of full passes
    assert gc.get_freeze_count() == 0


def test_a_heap_frozen_by_the_process_stays_frozen() -> None:
    import gc

    from dualwrite.initial_sync import frozen_heap

    gc.freeze()
    try:
        with frozen_heap():
            pass
        # Not unfrozen (that empties the permanent generation); a frozen object freed meanwhile
        # leaves it, so the count may be a little lower (a full run saw 2 fewer).
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()


async def test_a_task_runs_with_the_heap_frozen() -> None:
    import gc

    seen: list[int] = []

    class Watching(PagedReader):
        async def snapshot(self, table: str, resume: str = "") -> AsyncIterator[Page]:
            seen.append(gc.get_freeze_count())
            async for page in super().snapshot(table, resume):
                yield page

    sync, _ = runner(Watching(PAGES))
    await sync.run([TASK])
    assert seen and seen[0] > 0 and gc.get_freeze_count() == 0
