"""The gate's handlers as pure functions: plain dicts as tables, effects as values. No Faust."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import orjson
import pytest

from streams import gate, metrics
from streams.config import StreamsConfig
from streams.effects import (
    FLOOD,
    CommandSend,
    ControlSend,
    Count,
    DeadLetter,
    Delete,
    Effect,
    Fill,
    Forget,
    GateSend,
    Learn,
    Put,
    Recorder,
)
from streams.factview import KNOWN_VERSIONED
from streams.fingerprint import fingerprint
from streams.handlers import (
    Context,
    Position,
    handle,
    on_applied,
    on_control,
    on_fact,
    on_observed,
    on_pending,
    on_tick,
    on_tx,
    reject,
)
from streams.maps import default_registry
from streams.maps.model import Endpoint, FieldMap, TableMap
from streams.maps.registry import MapRegistry
from streams.pending import Pending
from streams.published import PUBLISHED, Published, skips
from streams.transform import observed_fields
from streams.wire import (
    AppliedMsg,
    ControlMsg,
    FactMsg,
    ObservedMsg,
    PendingMsg,
    TickMsg,
    TxMsg,
)
from tests.unit.streams import rows
from topics import Applied, CommandSource, decode_command

pytestmark = pytest.mark.unit

MAPS = default_registry()
PROJECT_KEY = {"dataAreaId": "usmf", "ProjectId": "PRJ-1"}
PROJECT_RECORD = "ProjectsV2(ProjectId='PRJ-1',dataAreaId='usmf')"
EMIT_KEY = f"present:{PROJECT_RECORD}"
COMPANY = {"cdm_companycode": "usmf"}
ACCOUNT = {"accountnumber": "US-001"}
Tables = dict[str, dict[str, Any]]


def ctx(**config: Any) -> Context:
    return Context(maps=MAPS, config=StreamsConfig(**config), gate_topic="unit-gate")


def at(key: str, offset: int = 10, partition: int = 0) -> Position:
    return Position(key=key, partition=partition, offset=offset, now_ms=5_000)


def tables(**given: dict[str, Any]) -> Tables:
    return {"facts": {}, "targets": {}, "parked": {}, "pairs": {}, "states": {}, FLOOD: {}, PUBLISHED: {},
            **given}


def run(handler: Callable[..., list[Effect]], msg: Any, where: Position, state: Tables,
        context: Context | None = None) -> list[Effect]:
    """The handler's effects; it must leave the tables it read untouched."""
    before = copy.deepcopy(state)
    effects = handler(msg, where, state, context or ctx())
    assert state == before
    return effects


def apply(state: Tables, effects: list[Effect]) -> None:
    """What the applier does to the tables (sends and metrics are not state)."""
    for e in effects:
        if isinstance(e, Put):
            state[e.table][e.key] = e.value
        elif isinstance(e, Delete):
            state[e.table].pop(e.key, None)


def applied(effects: list[Effect]) -> Tables:
    state = tables()
    apply(state, effects)
    return state


def waiting(state: Tables, key: str) -> list[dict[str, Any]]:
    """The items waiting at ``key`` (`streams.gate` keeps them in chunks beside the slot)."""
    return [item for k, item in gate.waiting_in(state["parked"]) if k == key]


def parked(key: str, *items: dict[str, Any]) -> dict[str, Any]:
    """A ``parked`` table where ``items`` wait at ``key``."""
    table: dict[str, Any] = {}
    writes, _ = gate.park(key, list(items), 1, table.get)
    table.update(writes)
    return table


def of(kind: type, effects: list[Effect]) -> list[Any]:
    return [e for e in effects if isinstance(e, kind)]


def puts(effects: list[Effect], table: str) -> dict[str, Any]:
    return {e.key: e.value for e in effects if isinstance(e, Put) and e.table == table}


def counted(effects: list[Effect], metric: Any) -> list[tuple[str, ...]]:
    return [e.labels for e in effects if isinstance(e, Count) and e.metric is metric]


def project(*, version: int = 3, op: str = "upsert", facts: dict[str, Any] | None = None,
            prev_version: int | None = None, **row: Any) -> Pending:
    source = CommandSource(system="dataverse", table="msdyn_projects", id=rows.PROJECT, version=version,
                           ts_ms=1_000)
    known = {rows.COMPANY_FACT: COMPANY, rows.ACCOUNT_FACT: ACCOUNT} if facts is None else facts
    return Pending(id=f"projects:{rows.PROJECT}:{version}", map="projects", op=op,
                   row=rows.project(**row) if op == "upsert" else {}, source=source, facts=known, born_ms=0,
                   prev_version=prev_version)


def broken_project(number: str = "PRJ-9") -> Pending:
    """statecode 9 has no value-map entry: the projects map refuses it once its lookups are known."""
    item = project(statecode=9, msdyn_projectnumber=number)
    return item.model_copy(update={"id": f"projects:{number}", "source": item.source.model_copy(
        update={"id": f"p-{number}"})})


# -- pending ---------------------------------------------------------------------------------
def test_a_key_this_worker_sent_for_the_previous_version_is_not_sent_again_but_the_command_is():
    effects = run(on_pending, PendingMsg(item=project(version=4, prev_version=3)), at(EMIT_KEY),
                  tables(published={rows.PROJECT_KEY_FACT: (dict(PROJECT_KEY), 3)}))
    assert not of(GateSend, effects)
    assert puts(effects, PUBLISHED) == {rows.PROJECT_KEY_FACT: (PROJECT_KEY, 4)}
    [command] = of(CommandSend, effects)
    assert decode_command(command.payload).command_id == f"projects:{rows.PROJECT}:4"


@pytest.mark.parametrize(("prev_version", "redriven", "why"), [
    (2, False, "a version between emitted elsewhere (its key changed and back): it may have sent another"),
    (None, False, "no previous version known"),
    (3, True, "a re-driven change repairs"),
])
def test_the_same_key_is_sent_again_unless_the_previous_version_sent_it(prev_version, redriven, why):
    item = project(version=4, prev_version=prev_version)
    item = item.model_copy(update={"source": item.source.model_copy(update={"redriven": redriven})})
    effects = run(on_pending, PendingMsg(item=item), at(EMIT_KEY),
                  tables(published={rows.PROJECT_KEY_FACT: (dict(PROJECT_KEY), 3 if prev_version != 2 else 1)}))
    [fact] = of(GateSend, effects)
    assert fact.key == rows.PROJECT_KEY_FACT and fact.msg.value == PROJECT_KEY, why


def test_a_key_that_changed_since_this_worker_sent_it_is_sent_and_remembered():
    renumbered = project(version=4, prev_version=3, msdyn_projectnumber="PRJ-2")
    emit_key = "present:ProjectsV2(ProjectId='PRJ-2',dataAreaId='usmf')"
    effects = run(on_pending, PendingMsg(item=renumbered), at(emit_key),
                  tables(published={rows.PROJECT_KEY_FACT: (dict(PROJECT_KEY), 3)}))
    [fact] = of(GateSend, effects)
    new_key = {**PROJECT_KEY, "ProjectId": "PRJ-2"}
    assert fact.key == rows.PROJECT_KEY_FACT and fact.msg.value == new_key
    assert puts(effects, PUBLISHED) == {rows.PROJECT_KEY_FACT: (new_key, 4)}


@pytest.mark.parametrize("where", [PUBLISHED, KNOWN_VERSIONED])
def test_a_version_released_after_a_newer_one_was_written_under_another_key_is_dropped(where):
    """Version 4 (PRJ-1) waited while version 5 renumbered the project to PRJ-2 and was written:
    written now, version 4 would make a PRJ-1 row that nothing deletes. Known from the key fact
    this worker sent (`published`) or learned (the fact view)."""
    renumbered = {**PROJECT_KEY, "ProjectId": "PRJ-2"}
    effects = run(on_pending, PendingMsg(item=project(version=4, prev_version=3)), at(EMIT_KEY),
                  tables(**{where: {rows.PROJECT_KEY_FACT: (renumbered, 5)}}))
    assert not of(CommandSend, effects) and not of(GateSend, effects)
    assert not puts(effects, PUBLISHED) and not puts(effects, "targets")
    assert counted(effects, metrics.DROPPED) == [("projects", metrics.RENUMBERED)]


def test_versions_in_a_row_send_the_key_once():
    """The first emit of a record in a run sends its key (a restart forgets what was sent); each
    next version, its predecessor having sent the same key, sends none."""
    state = tables()
    for prev, version in ((None, 3), (3, 4), (4, 5)):
        effects = run(on_pending, PendingMsg(item=project(version=version, prev_version=prev)), at(EMIT_KEY), state)
        assert len(of(GateSend, effects)) == (1 if version == 3 else 0)
        apply(state, effects)
    assert state[PUBLISHED] == {rows.PROJECT_KEY_FACT: (PROJECT_KEY, 5)}


def test_the_published_memory_starts_over_past_its_bound():
    memory = Published(max_keys=2)
    memory["key:a:1"], memory["key:a:2"] = {"id": 1}, {"id": 2}
    memory["key:a:2"] = {"id": 22}  # a key it holds: kept
    assert len(memory) == 2
    memory["key:a:3"] = {"id": 3}  # a third: what was sent is forgotten (it is sent again)
    assert memory == {"key:a:3": {"id": 3}}
    assert skips("key:projects:p-1") and not skips("partner:expense_estimates:x:Cost")


def test_a_ready_change_publishes_its_key_then_sends_its_command_then_records_it():
    effects = run(on_pending, PendingMsg(item=project()), at(EMIT_KEY), tables())
    kinds = [(type(e).__name__, getattr(e, "table", None)) for e in effects if not isinstance(e, Count)]
    assert kinds == [("Put", PUBLISHED), ("GateSend", None), ("CommandSend", None), ("Put", "targets")]
    [fact] = of(GateSend, effects)
    assert fact.key == rows.PROJECT_KEY_FACT and fact.msg == FactMsg(key=rows.PROJECT_KEY_FACT,
                                                                     value=PROJECT_KEY, version=3)
    assert puts(effects, PUBLISHED) == {rows.PROJECT_KEY_FACT: (PROJECT_KEY, 3)}
    [command] = of(CommandSend, effects)
    assert (command.target, command.key) == ("finance", PROJECT_RECORD)
    assert decode_command(command.payload).command_id == f"projects:{rows.PROJECT}:3"
    assert puts(effects, "targets")[PROJECT_RECORD]["command_id"] == f"projects:{rows.PROJECT}:3"
    assert counted(effects, metrics.COMMANDS) == [("projects", "finance")]


def test_a_fact_found_at_its_own_key_is_collected_and_the_walk_goes_on_to_the_next_key():
    state = tables(facts={rows.COMPANY_FACT: COMPANY})
    effects = run(on_pending, PendingMsg(item=project(facts={})), at(rows.COMPANY_FACT), state)
    assert of(Fill, effects) == [Fill(rows.COMPANY_FACT, COMPANY)]
    [send] = of(GateSend, effects)
    assert send.key == rows.ACCOUNT_FACT
    assert send.msg.item.facts == {rows.COMPANY_FACT: COMPANY}


def test_a_fact_not_yet_known_parks_the_change_at_its_key():
    effects = run(on_pending, PendingMsg(item=project(facts={})), at(rows.COMPANY_FACT), tables())
    [slot] = waiting(applied(effects), rows.COMPANY_FACT)
    assert slot["id"] == f"projects:{rows.PROJECT}:3" and slot["parked_ms"] == 5_000
    assert counted(effects, metrics.PARKED) == [("projects", "waits")]
    assert not of(GateSend, effects)


def test_a_stale_change_is_dropped():
    newer = {"last": {"source": f"dataverse:msdyn_projects:{rows.PROJECT}", "version": 9}}
    effects = run(on_pending, PendingMsg(item=project(version=3)), at(EMIT_KEY),
                  tables(targets={PROJECT_RECORD: newer}))
    assert not of(CommandSend, effects) and "targets" not in {e.table for e in of(Put, effects)}
    assert counted(effects, metrics.DROPPED) == [("projects", metrics.STALE)]


def member_of(item: Pending, *others: str) -> Pending:
    """A released transaction's change: counted in the change set with ``others``."""
    return item.model_copy(update={"tx_members": (item.source.id, *others), "tx_order": 1,
                                   "source": item.source.model_copy(update={"txid": "tx1"})})


@pytest.mark.parametrize("metric, labels, stored", [
    (metrics.DROPPED, ("projects", metrics.STALE),
     {"last": {"source": f"dataverse:msdyn_projects:{rows.PROJECT}", "version": 9}}),
    (metrics.NOOPS, ("projects",), None),
])
def test_a_transaction_member_with_nothing_to_write_still_takes_its_place_in_the_change_set(
        metric: Any, labels: tuple[str, ...], stored: dict[str, Any] | None) -> None:
    """Dropped silently, the sink would hold the other members ``tx_wait_s`` waiting for it."""
    item = member_of(project(version=3), "other-change")
    state = tables()
    if stored is None:  # the same values already written: a no-op
        apply(state, run(on_pending, PendingMsg(item=project(version=2)), at(EMIT_KEY), state))
    else:
        state["targets"][PROJECT_RECORD] = stored
    effects = run(on_pending, PendingMsg(item=item), at(EMIT_KEY), state)
    [skip] = [decode_command(c.payload) for c in of(CommandSend, effects)]
    assert (skip.op, skip.tx_size, skip.tx_order, skip.fields) == ("skip", 2, 1, {})
    assert skip.source.txid == "tx1" and skip.target == "finance"
    assert counted(effects, metric) == [labels]


def test_a_dead_lettered_transaction_member_takes_its_place_too():
    effects = run(on_pending, PendingMsg(item=member_of(broken_project(), "other-change")), at(EMIT_KEY), tables())
    assert of(DeadLetter, effects)
    [skip] = [decode_command(c.payload) for c in of(CommandSend, effects)]
    assert skip.op == "skip" and skip.tx_size == 2


def test_a_change_alone_or_outside_the_count_sends_no_skip():
    state = tables(targets={PROJECT_RECORD: {"last": {"source": f"dataverse:msdyn_projects:{rows.PROJECT}",
                                                      "version": 9}}})
    alone = member_of(project(version=3))
    not_counted = member_of(project(version=3), "other-change").model_copy(update={"tx_members": ("a", "b")})
    for item in (alone, not_counted):
        assert not of(CommandSend, run(on_pending, PendingMsg(item=item), at(EMIT_KEY), state))


def test_a_delete_marks_the_row_deleted():
    item = project(op="delete", version=8, facts={rows.PROJECT_KEY_FACT: PROJECT_KEY})
    effects = run(on_pending, PendingMsg(item=item), at(EMIT_KEY), tables())
    [command] = of(CommandSend, effects)
    assert decode_command(command.payload).op == "delete"
    target = puts(effects, "targets")[PROJECT_RECORD]
    assert target["deleted"] is True and target["last"]["version"] == 8


def test_a_failing_change_is_a_dead_letter_with_its_stage_and_position():
    effects = run(on_pending, PendingMsg(item=broken_project()), at(EMIT_KEY, offset=42), tables())
    [letter] = of(DeadLetter, effects)
    headers = {k: v.decode() for k, v in letter.headers}
    assert headers["dlq.stage"] == "transform" and headers["dlq.map"] == "projects"
    assert headers["dlq.original.topic"] == "unit-gate" and headers["dlq.original.offset"] == "42"
    assert Pending.model_validate_json(letter.value).id == "projects:PRJ-9"
    assert puts(effects, FLOOD) == {"projects": 1}


def test_a_paused_map_parks_its_failing_change():
    effects = run(on_pending, PendingMsg(item=broken_project()), at(EMIT_KEY),
                  tables(states={"projects@0": "paused"}))
    assert not of(DeadLetter, effects)
    assert [i["id"] for i in waiting(applied(effects), "paused:projects@0")] == ["projects:PRJ-9"]
    assert counted(effects, metrics.PARKED) == [("projects", "paused")]


def test_a_run_of_failures_pauses_the_map_and_the_next_failure_in_the_same_walk_parks():
    # A transaction releases two changes the map refuses, with a pause after one rejection: the
    # first is dead-lettered and pauses the map; the second, in the same handler run, reads that
    # pause (its own write, not yet in the tables) and waits with the paused map instead.
    key = "tx:dataverse:tx1"
    first, second = in_tx(broken_project("PRJ-8")), in_tx(broken_project("PRJ-9"))
    state = tables()
    apply(state, run(on_tx, TxMsg(event="e1", total=2, items=[first, second]), at(key, 1), state))
    effects = run(on_tx, TxMsg(event="e2", total=2, items=[]), at(key, 2), state,
                  ctx(pause_after_rejections=1))
    [letter] = of(DeadLetter, effects)
    assert Pending.model_validate_json(letter.value).id == "projects:PRJ-8"
    [control] = of(ControlSend, effects)
    assert control.state.map == "projects" and control.state.state == "paused"
    apply(state, effects)
    assert state["states"]["projects@0"] == "paused"
    assert [i["id"] for i in waiting(state, "paused:projects@0")] == ["projects:PRJ-9"]


def test_a_walk_reads_its_own_writes():
    rec = Recorder({"facts": {"a": {"x": 1}}})
    rec.put("facts", "b", {"y": 2})
    rec.delete("facts", "a")
    assert rec.get("facts", "a") is None and rec.get("facts", "b") == {"y": 2}
    assert rec.get("parked", "a") is None  # a table not given reads as empty
    assert rec.effects == [Put("facts", "b", {"y": 2}), Delete("facts", "a")]


# -- transactions and ticks ------------------------------------------------------------------
def in_tx(item: Pending) -> Pending:
    return item.model_copy(update={"tx_total": 2, "source": item.source.model_copy(update={"txid": "tx1"})})


def test_a_transaction_waits_for_all_its_events_then_releases_its_changes_together():
    state = tables()
    key = "tx:dataverse:tx1"
    item = in_tx(project())
    first = run(on_tx, TxMsg(event="dataverse:msdyn_projects:p:3", total=2, items=[item]), at(key, 1), state)
    apply(state, first)
    assert not of(GateSend, first) and state["states"]["open-tx@0"] == {key: 5_000}
    second = run(on_tx, TxMsg(event="dataverse:other:o:3", total=2, items=[]), at(key, 2), state)
    apply(state, second)
    [send] = of(GateSend, second)
    assert send.key == EMIT_KEY and (send.msg.item.tx_size, send.msg.item.tx_counted) == (1, True)
    assert state["states"]["open-tx@0"] == {} and waiting(state, key) == []


def test_a_transaction_of_6001_events_is_released_whole_and_every_value_it_writes_is_small():
    """A proforma confirmation of 1,500 lines is one transaction of 6,001 events: its slot used
    to be one value past Kafka's 1 MB message limit (the worker crash-looped)."""
    key, total = "tx:dataverse:big", 6_001
    base = in_tx(project())
    state = tables()
    sent: list[GateSend] = []
    for n in range(total):
        member = base.model_copy(update={"id": f"projects:p{n}:3", "tx_total": total,
                                         "source": base.source.model_copy(update={"id": f"p{n}"})})
        effects = on_tx(TxMsg(event=f"dataverse:msdyn_projects:p{n}:3", total=total, items=[member]),
                        at(key, n), state, ctx())
        assert all(len(orjson.dumps(e.value)) < 64_000 for e in effects if isinstance(e, Put)), n
        apply(state, effects)
        sent += of(GateSend, effects)
        assert len(sent) == (total if n == total - 1 else 0)
    assert sorted(s.msg.item.id for s in sent) == sorted(f"projects:p{n}:3" for n in range(total))
    assert {(s.msg.item.tx_size, s.msg.item.tx_counted) for s in sent} == {(total, True)}
    # Each member carries its change set's size, not its membership: every hop stays small.
    assert max(len(s.msg.item.model_dump_json()) for s in sent) < 2_000
    assert waiting(state, key) == [] and state["states"]["open-tx@0"] == {}


def test_a_change_its_map_filters_out_is_no_member_of_the_change_set():
    """A proforma confirmation's Skip Sync reversal is dropped: the sink must not wait for it."""
    state = tables()
    key = "tx:dataverse:tx1"
    kept = in_tx(project())
    filtered = in_tx(project(msdyn_projectnumber=None)).model_copy(
        update={"id": "projects:p-2:3", "source": kept.source.model_copy(update={"id": "p-2"})})
    done = run(on_tx, TxMsg(event="dataverse:msdyn_projects:p:3", total=2, items=[kept, filtered]),
               at(key, 1), state)
    apply(state, done)
    done = run(on_tx, TxMsg(event="dataverse:msdyn_projects:p-2:3", total=2, items=[]), at(key, 2), state)
    [send] = of(GateSend, done)  # the filtered change is dropped where it is
    assert (send.msg.item.tx_size, send.msg.item.tx_counted) == (1, True)
    assert counted(done, metrics.DROPPED) == [("projects", "filter of map 'projects'")]


def test_the_tick_releases_a_transaction_whose_missing_events_never_came():
    key = "tx:dataverse:tx1"
    state = tables()
    apply(state, run(on_tx, TxMsg(event="e1", total=3, items=[in_tx(project())]), at(key, 1), state))
    early = run(on_tick, TickMsg(ts_ms=5_000), at("tick", 2), state, ctx(tx_timeout_ms=1_000))
    assert early == []
    late = run(on_tick, TickMsg(ts_ms=6_000), at("tick", 3), state, ctx(tx_timeout_ms=1_000))
    [send] = of(GateSend, late)
    assert send.key == EMIT_KEY and (send.msg.item.tx_size, send.msg.item.tx_counted) == (1, True)
    assert puts(late, "states")["open-tx@0"] == {}


# -- facts -----------------------------------------------------------------------------------
def waiting_on_account() -> Tables:
    item = project(facts={rows.COMPANY_FACT: COMPANY}).model_dump(mode="json")
    return tables(parked=parked(rows.ACCOUNT_FACT, item))


def test_a_fact_is_stored_mirrored_and_releases_what_waited_for_it():
    state = waiting_on_account()
    effects = run(on_fact, FactMsg(key=rows.ACCOUNT_FACT, value=ACCOUNT, version=4), at(rows.ACCOUNT_FACT), state)
    assert puts(effects, "facts") == {rows.ACCOUNT_FACT: ACCOUNT}
    assert of(Learn, effects) == [Learn(rows.ACCOUNT_FACT, ACCOUNT, 4)]
    [send] = of(GateSend, effects)
    assert send.key == rows.ACCOUNT_FACT  # back to the key it waited on: the walk goes on there
    order = [type(e).__name__ for e in effects if isinstance(e, Put | GateSend)]
    assert order == ["Put", "Put", "GateSend"]  # fact, then the release recorded, then forwarded
    assert counted(effects, metrics.RELEASED) == [("fact",)]


def test_a_replayed_release_returns_the_same_items():
    state = waiting_on_account()
    fact = FactMsg(key=rows.ACCOUNT_FACT, value=ACCOUNT)
    first = run(on_fact, fact, at(rows.ACCOUNT_FACT, offset=7), state)
    apply(state, first)
    replay = run(on_fact, fact, at(rows.ACCOUNT_FACT, offset=7), state)
    assert of(GateSend, replay) == of(GateSend, first) and len(of(GateSend, replay)) == 1
    assert "facts" not in {e.table for e in of(Put, replay)}  # unchanged: no changelog write
    later = run(on_fact, fact, at(rows.ACCOUNT_FACT, offset=8), state)
    assert of(GateSend, later) == []  # a later record of the same fact releases nothing again


def test_a_forgotten_fact_is_deleted_and_unmirrored():
    effects = run(on_fact, FactMsg(key=rows.ACCOUNT_FACT, value=None), at(rows.ACCOUNT_FACT),
                  tables(facts={rows.ACCOUNT_FACT: ACCOUNT}))
    assert effects == [Delete("facts", rows.ACCOUNT_FACT), Forget(rows.ACCOUNT_FACT)]


# -- what the targets tell us ----------------------------------------------------------------
def ack(op: str = "upsert") -> AppliedMsg:
    return AppliedMsg(ack=Applied(command_id="c1", map="projects", target="finance", entity="ProjectsV2",
                                  key=PROJECT_KEY, op=op, source_version=3,
                                  source_system="dataverse", source_table="msdyn_projects",
                                  source_id=rows.PROJECT, fingerprint="fp1", target_id="5637", applied_ts_ms=1))


def test_an_ack_records_what_the_row_holds_and_its_presence():
    sent = {"sent": {"a": 1}, "sent_fp": "fp1", "command_id": "c1"}
    effects = run(on_applied, ack(), at(EMIT_KEY), tables(targets={PROJECT_RECORD: sent}))
    target = puts(effects, "targets")[PROJECT_RECORD]
    assert target["applied_fp"] == "fp1" and target["current"] == {"a": 1}
    assert puts(effects, "facts") == {EMIT_KEY: {"target_id": "5637"}}
    assert of(Learn, effects) == [Learn(EMIT_KEY, {"target_id": "5637"}, None)]


def test_an_ack_of_a_delete_forgets_the_row():
    effects = run(on_applied, ack("delete"), at(EMIT_KEY), tables(facts={EMIT_KEY: {"target_id": "5637"}}))
    assert puts(effects, "targets")[PROJECT_RECORD] == {"deleted": True}
    assert of(Delete, effects) == [Delete("facts", EMIT_KEY)] and of(Forget, effects) == [Forget(EMIT_KEY)]


def test_an_ack_handled_in_place_is_never_taken_for_the_gate_record_at_its_offset():
    """The acks agent hands the gate an ack at its own topic's offset: a release it makes is
    remembered apart from the gate record at that offset, which must not re-forward it."""
    waiting = project(facts={rows.COMPANY_FACT: COMPANY, rows.ACCOUNT_FACT: ACCOUNT}).model_dump(mode="json")
    state = tables(parked=parked(EMIT_KEY, waiting))
    in_place = Position(key=EMIT_KEY, partition=0, offset=7, now_ms=5_000, topic="sync.applied.finance")
    first = run(on_applied, ack(), in_place, state)
    assert len(of(GateSend, first)) == 1
    apply(state, first)
    assert of(GateSend, run(on_applied, ack(), in_place, state)) == of(GateSend, first)  # its replay
    gate_record = run(on_fact, FactMsg(key=EMIT_KEY, value={"target_id": "5637"}), at(EMIT_KEY, offset=7), state)
    assert of(GateSend, gate_record) == []


def observed(op: str = "u", **row: Any) -> ObservedMsg:
    source = CommandSource(system="finance", table="ProjectsV2", id="5637", version=4, ts_ms=1)
    return ObservedMsg(map="projects", record_key=PROJECT_RECORD, op=op,
                       row={"dataAreaId": "usmf", "ProjectId": "PRJ-1", **row}, target_id="5637",
                       source=source)


def test_an_observed_row_from_before_our_delete_is_ignored():
    effects = run(on_observed, observed(), at(EMIT_KEY), tables(targets={PROJECT_RECORD: {"deleted": True}}))
    assert effects == [Count(metrics.DROPPED, ("projects", metrics.BEFORE_OUR_DELETE))]


def test_an_observed_echo_of_our_write_stops_and_records_presence():
    msg = observed()
    fp = fingerprint(observed_fields(MAPS["projects"], msg.row))
    effects = run(on_observed, msg, at(EMIT_KEY), tables(targets={PROJECT_RECORD: {"sent_fp": fp, "sent": {}}}))
    assert counted(effects, metrics.ECHOES) == [("projects",)]
    assert puts(effects, "facts") == {EMIT_KEY: {"target_id": "5637"}}
    assert not of(GateSend, effects)


def test_an_observed_delete_forgets_presence_and_what_the_row_held():
    effects = run(on_observed, observed("d"), at(EMIT_KEY),
                  tables(targets={PROJECT_RECORD: {"current": {"a": 1}, "sent": {"a": 1}}}))
    assert of(Forget, effects) == [Forget(EMIT_KEY)]
    assert puts(effects, "targets")[PROJECT_RECORD] == {"sent": {"a": 1}}


# -- control ---------------------------------------------------------------------------------
def test_a_pause_is_recorded_and_a_resume_releases_what_the_pause_parked():
    item = project().model_dump(mode="json")
    # a slot as the old layout wrote it (one value): read as it was
    state = tables(parked={"paused:projects@0": {"waiting": [item], "released": [], "events": []}})
    paused = run(on_control, ControlMsg(map="projects", state="paused"), at("control:projects"), state)
    assert paused == [Put("states", "projects@0", "paused")]
    apply(state, paused)
    resumed = run(on_control, ControlMsg(map="projects", state="running"), at("control:projects"), state)
    assert puts(resumed, "states") == {"projects@0": "running"}
    [send] = of(GateSend, resumed)
    assert send.key == EMIT_KEY and counted(resumed, metrics.RELEASED) == [("resume",)]


def test_a_rejection_at_ingest_counts_towards_the_pause_without_a_partition():
    state = tables()
    first = reject("projects", None, 9_000, state, ctx(pause_after_rejections=2))
    assert first == [Put(FLOOD, "projects", 1)]
    apply(state, first)
    second = reject("projects", None, 9_000, state, ctx(pause_after_rejections=2))
    [control] = of(ControlSend, second)
    assert control.state.ts_ms == 9_000 and "states" not in {e.table for e in of(Put, second)}


def test_handle_dispatches_every_kind():
    state = tables(facts={rows.ACCOUNT_FACT: ACCOUNT})
    assert handle(FactMsg(key=rows.ACCOUNT_FACT, value=None), at(rows.ACCOUNT_FACT), state, ctx()) == \
        on_fact(FactMsg(key=rows.ACCOUNT_FACT, value=None), at(rows.ACCOUNT_FACT), state, ctx())
    assert handle(TickMsg(ts_ms=1), at("tick"), state, ctx()) == []


# -- write-back: fields only the target fills -------------------------------------------------
POSTED = TableMap(
    name="posted",
    source=Endpoint(system="dataverse", table="msdyn_actuals", primary_key="msdyn_actualid"),
    target=Endpoint(system="finance", table="ActualsStaging", company="ProjectDataAreaId"),
    key=(FieldMap(target="ProjectDataAreaId", source="company"),
         FieldMap(target="ActualId", source="msdyn_actualid")),
    fields=(FieldMap(target="Amount", source="msdyn_amount"),),
    reverse_key=(FieldMap(target="msdyn_actualid", source="ActualId", in_fields=False),),
    write_back=(FieldMap(target="Voucher", source="msdyn_vouchernumber"),
                FieldMap(target="AmountMST", source="msdyn_accountingamount")),
)
STAGED = "ActualsStaging(ActualId='a-1',ProjectDataAreaId='usmf')"


def staged(**row: Any) -> ObservedMsg:
    source = CommandSource(system="finance", table="ActualsStaging", id="77", version=9, ts_ms=1)
    return ObservedMsg(map="posted", record_key=STAGED, op="u", target_id="77", source=source,
                       row={"ProjectDataAreaId": "usmf", "ActualId": "a-1", "Amount": 100, **row})


def test_fields_the_target_fills_flow_back_update_only_even_when_the_rest_is_our_echo():
    context = Context(maps=MapRegistry((POSTED,)), config=StreamsConfig(), gate_topic="unit-gate")
    msg = staged(Voucher="V-001", AmountMST=92.5)
    ours = fingerprint(observed_fields(POSTED, msg.row))
    state = tables(targets={STAGED: {"sent_fp": ours, "sent": {"Amount": 100}}})
    effects = run(on_observed, msg, at(f"present:{STAGED}"), state, context)
    [hop] = of(GateSend, effects)  # a change is emitted at its target row's key
    assert hop.key == "present:msdyn_actuals(msdyn_actualid='a-1')"
    emitted = run(on_pending, hop.msg, at(hop.key), tables(), context)
    [command] = [decode_command(c.payload) for c in of(CommandSend, emitted)]
    assert (command.target, command.entity, command.key) == ("dataverse", "msdyn_actuals",
                                                             {"msdyn_actualid": "a-1"})
    assert command.fields == {"msdyn_vouchernumber": "V-001", "msdyn_accountingamount": 92.5}
    assert command.update_only
    assert counted(effects, metrics.ECHOES) == [("posted",)]

    apply(state, effects)  # the same values on the feed again: nothing more flows back
    again = run(on_observed, staged(Voucher="V-001", AmountMST=92.5), at(f"present:{STAGED}"), state,
                context)
    assert not of(GateSend, again) and not of(CommandSend, again)


def test_a_target_row_without_write_back_values_sends_nothing_back():
    context = Context(maps=MapRegistry((POSTED,)), config=StreamsConfig(), gate_topic="unit-gate")
    msg = staged()
    ours = fingerprint(observed_fields(POSTED, msg.row))
    effects = run(on_observed, msg, at(f"present:{STAGED}"),
                  tables(targets={STAGED: {"sent_fp": ours, "sent": {"Amount": 100}}}), context)
    assert not of(GateSend, effects) and not of(CommandSend, effects)


def test_a_half_of_a_pair_parks_for_its_partner_and_makes_its_own_half_known():
    from tests.unit.streams.test_estimate_maps import LINE_FACTS, PAIR, line

    item = line("cost-1", 192350000, 80.0).model_copy(update={"facts": LINE_FACTS})
    partner = f"partner:expense_estimates:{PAIR}:Sales"
    effects = run(on_pending, PendingMsg(item=item), at(partner), tables())
    [announce] = of(GateSend, effects)
    own = f"partner:expense_estimates:{PAIR}:Cost"
    assert announce.key == own and announce.msg == FactMsg(key=own, value={"id": "cost-1"}, version=7)
    assert [w["id"] for w in waiting(applied(effects), partner)] == ["expense_estimates:cost-1:7"]
    assert not of(CommandSend, effects)


def test_a_released_transaction_is_forgotten_by_the_first_tick_past_the_horizon():
    key = "tx:dataverse:tx1"
    state = tables()
    apply(state, run(on_tx, TxMsg(event="e1", total=2, items=[in_tx(project())]), at(key, 1), state))
    apply(state, run(on_tx, TxMsg(event="e2", total=2, items=[]), at(key, 2), state))
    assert waiting(state, key) == [] and [k for k in state["parked"] if k.startswith(key)]
    hour = ctx(tx_forget_ms=3_600_000)
    apply(state, run(on_tick, TickMsg(ts_ms=3_600_000), at("tick", 3), state, hour))
    assert [k for k in state["parked"] if k.startswith(key)]  # within the hour: kept for a replay
    apply(state, run(on_tick, TickMsg(ts_ms=3_720_000), at("tick", 4), state, hour))
    assert state["parked"] == {}
    assert {k: v for k, v in state["states"].items() if k.startswith("released-tx")} == {"released-tx@0": {}}


def test_lookup_rows_this_worker_knows_are_added_at_the_gate_in_one_step():
    """A change handled under a key that is none of its lookups' (sent on from where it
    waited), whose two lookups the worker's view knows: both added at once, and it goes on to
    its emit key."""
    from streams.factview import KNOWN, LOOKUPS

    item = project(facts={})
    state = tables(**{KNOWN: {rows.COMPANY_FACT: COMPANY, rows.ACCOUNT_FACT: ACCOUNT}})
    effects = run(on_pending, PendingMsg(item=item), at("row:elsewhere"), state)
    [send] = of(GateSend, effects)
    assert send.key == EMIT_KEY and send.msg.item.facts == {rows.COMPANY_FACT: COMPANY, rows.ACCOUNT_FACT: ACCOUNT}
    assert [e.amount for e in effects if isinstance(e, Count) and e.metric is LOOKUPS] == [2]
