"""The agents with `agent.test_context()` on the memory store: no broker, topics recorded."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import pytest

from streams import StreamsConfig, create_app
from streams.app import Runtime
from streams.gate import waiting_in
from streams.maps import LEGAL_ENTITIES, FieldMap, MapRegistry
from streams.wire import PendingMsg, TickMsg, decode_gate, encode_gate
from tests.unit.streams import rows
from topics import ChangeEvent, decode_command, encode, encode_key
from topics.envelope import Source, TransactionBlock

pytestmark = pytest.mark.unit


@dataclass
class Recorded:
    sent: list[tuple[str, bytes | None, bytes | None, Any]] = field(default_factory=list)

    def attach(self, rt: Runtime) -> Recorded:
        """Record every record the agents send (`streams.app.Runtime.send`) instead of producing it."""
        async def send(name: str, key: bytes | None, value: bytes | None, *, partition: int | None = None,
                       headers: Any = None) -> None:
            self.sent.append((name, key, value, headers))

        rt.send = send  # type: ignore[method-assign]
        return self

    def take(self, name: str) -> list[tuple[bytes | None, bytes | None, Any]]:
        out = [(k, v, h) for n, k, v, h in self.sent if n == name]
        self.sent = [s for s in self.sent if s[0] != name]
        return out


@pytest.fixture
def rt(tmp_path) -> Runtime:
    config = StreamsConfig(app_id=f"unit-{uuid.uuid4().hex[:8]}", store="memory://",
                           data_dir=tmp_path, partitions=1, tx_timeout_ms=0)
    app = create_app(config)
    app.finalize()
    return app.runtime


def agent(rt: Runtime, name: str) -> Any:
    [found] = [a for a in rt.app.agents.values() if a.name.rsplit(".", 1)[-1] == name]
    return found


def change(table: str, row: dict, version: int, txid: str | None = None, total: int | None = None) -> bytes:
    return encode(ChangeEvent(after=row, op="c", ts_ms=1, source=Source(
        system="dataverse", table=table, version=str(version), ts_ms=1, txid=txid),
        transaction=TransactionBlock(id=txid, total_order=1, data_collection_order=1, event_count=total)
        if txid and total else None))


async def test_ingest_dedupes_and_dead_letters_bad_records(rt):
    rec = Recorded().attach(rt)
    async with agent(rt, "ingest").test_context() as ingest:
        value = change("msdyn_projects", rows.project(), 7)
        for _ in range(2):
            await ingest.put(value, key=encode_key(rows.PROJECT))
        await ingest.put(b"{not json", key=encode_key("x"))
    gate = rec.take("gate")
    # Once: the change (keyed by its company) and the project's presence (expense lines bind it).
    assert [k.decode().split("(")[0] for k, _v, _h in gate] == [rows.COMPANY_FACT, "present:msdyn_projects"]
    [(_key, value, headers)] = rec.take("dlq")
    assert value == b"{not json" and dict(headers)["dlq.stage"] == b"decode"


def wire(rt: Runtime) -> Recorded:
    return Recorded().attach(rt)


async def ingest_all(rt: Runtime, changes: list[tuple[str, bytes]]) -> None:
    async with agent(rt, "ingest").test_context() as ingest:
        for record_id, value in changes:
            await ingest.put(value, key=encode_key(record_id))


async def pump(rt: Runtime, rec: Recorded, extra: list[tuple[bytes, bytes]] = (),
               handled: list[bytes] | None = None) -> None:
    """Feed every gate record (and what handling it sends to the gate) through the gate agent;
    their keys are added to ``handled`` when given."""
    async with agent(rt, "gate").test_context() as gate:
        queue = [(k, v) for k, v, _ in rec.take("gate")] + list(extra)
        while queue:
            key, value = queue.pop(0)
            if handled is not None:
                handled.append(key)
            await gate.put(value, key=key)
            queue.extend((k, v) for k, v, _ in rec.take("gate"))


def commands(rec: Recorded) -> list[Any]:
    return [decode_command(v) for _, v, _ in rec.take("commands.finance")]


COMPANY_ROW = {"cdm_companyid": rows.COMPANY, "cdm_companycode": "usmf", "cdm_name": "Contoso"}
ACCOUNT_ROW = rows.account_in_dataverse()


async def test_incomplete_transaction_is_released_by_the_tick(rt):
    rec = wire(rt)
    await ingest_all(rt, [
        (rows.COMPANY, change("cdm_companies", COMPANY_ROW, 1)),
        (rows.ACCOUNT, change("accounts", ACCOUNT_ROW, 1)),
        # Three changes in the source transaction, but only two reach tables we read.
        ("t-guid-1", change("msdyn_projecttasks", rows.task(), 2, txid="tx9", total=3)),
        (rows.PROJECT, change("msdyn_projects", rows.project(), 7, txid="tx9", total=3)),
    ])
    await pump(rt, rec)
    assert commands(rec) == []
    tick = encode_gate(TickMsg(ts_ms=2**62))
    await pump(rt, rec, [(b"tick", tick)])
    sent = commands(rec)
    out = [c for c in sent if c.op != "hold"]
    assert sorted(c.entity for c in out) == ["ProjectTasks", "ProjectsV2"]
    assert {c.tx_size for c in out} == {2}
    # The task waited in the gate for its project's key, which the project's own emission
    # publishes (it may wait for a write of this set): no hold, the sink's wait is enough.
    assert [c for c in sent if c.op == "hold"] == []


async def test_a_member_waiting_for_a_reference_row_holds_its_change_set_at_the_sink(rt):
    """The project waits for its company's row (a lookup of a reference row, which no write of
    its change set brings): the sink is told to hold the set until the project comes."""
    rec = wire(rt)
    await ingest_all(rt, [
        (rows.ACCOUNT, change("accounts", ACCOUNT_ROW, 1)),
        ("t-guid-1", change("msdyn_projecttasks", rows.task(), 2, txid="tx9", total=2)),
        (rows.PROJECT, change("msdyn_projects", rows.project(), 7, txid="tx9", total=2)),
    ])
    await pump(rt, rec)
    assert [(c.op, c.key, c.tx_size) for c in commands(rec)] == [("hold", {"hold": rows.PROJECT}, 2)]
    await ingest_all(rt, [(rows.COMPANY, change("cdm_companies", COMPANY_ROW, 1))])
    await pump(rt, rec)
    assert sorted(c.entity for c in commands(rec)) == ["ProjectTasks", "ProjectsV2"]


async def test_waiters_released_by_the_target_feed_and_paused_map_resumes(rt):
    from streams.wire import ControlMsg

    rec = wire(rt)
    pause = encode_gate(ControlMsg(map="project_tasks", state="paused"))
    await pump(rt, rec, [(b"control:project_tasks", pause)])
    await ingest_all(rt, [
        (rows.COMPANY, change("cdm_companies", COMPANY_ROW, 1)),
        (rows.ACCOUNT, change("accounts", ACCOUNT_ROW, 1)),
        (rows.PROJECT, change("msdyn_projects", rows.project(), 7)),
        ("t-1", change("msdyn_projecttasks", rows.task(msdyn_projecttaskid="t-1"), 2)),
        ("t-2", change("msdyn_projecttasks", rows.task(msdyn_projecttaskid="t-2",
                                                       msdyn_wbsid="1.3"), 2)),
    ])
    await pump(rt, rec)
    [project] = commands(rec)
    parked = [k for k, _ in waiting_in(dict(rt.table("parked").items()))]
    assert parked.count(rows.PROJECT_PRESENT) == 2  # two waiters on one project
    # Finance's own feed shows the project: both tasks go on, and wait for the paused map.
    await ingest_all(rt, [("5637144576", encode(ChangeEvent(
        after={**project.fields, "RecId": 5637144576}, op="c", ts_ms=1,
        source=Source(system="finance", table="ProjectsV2", version="3", ts_ms=1))))])
    await pump(rt, rec)
    assert commands(rec) == []
    resume = encode_gate(ControlMsg(map="project_tasks", state="running"))
    await pump(rt, rec, [(b"control:project_tasks", resume)])
    assert sorted(c.key["Task"] for c in commands(rec)) == ["1.2", "1.3"]
    assert rec.take("dlq") == []


async def test_ingest_lets_a_dlq_retry_of_a_seen_version_through_but_not_a_plain_copy(tmp_path):
    # A transform failing happens after dedupe recorded the version: without the retry header
    # a re-driven copy would be dropped as a duplicate and never tried again.
    strict = LEGAL_ENTITIES.model_copy(update={"fields": (*LEGAL_ENTITIES.fields, FieldMap(
        target="cdm_kind", source="Kind", value_map=((1, "one"),), direction="to_dataverse"))})
    config = StreamsConfig(app_id=f"unit-{uuid.uuid4().hex[:8]}", store="memory://",
                           data_dir=tmp_path, partitions=1, tx_timeout_ms=0)
    app = create_app(config, MapRegistry((strict,)))
    app.finalize()
    rt = app.runtime
    rec = Recorded().attach(rt)

    def legal_entity(version: int) -> bytes:
        return encode(ChangeEvent(after={"dataAreaId": "usmf", "Name": "Contoso", "Kind": 5},
                                  op="u", ts_ms=1, source=Source(system="finance", table="LegalEntities",
                                                                  version=str(version), ts_ms=1)))

    retry = [("dualwrite.retry", b"1")]
    async with agent(rt, "ingest").test_context() as ingest:
        await ingest.put(legal_entity(7), key=encode_key("usmf"))
        await ingest.put(legal_entity(7), key=encode_key("usmf"))  # plain copy: a duplicate
        await ingest.put(legal_entity(7), key=encode_key("usmf"), headers=retry)  # re-driven
        await ingest.put(legal_entity(6), key=encode_key("usmf"), headers=retry)  # older: dropped
    await pump(rt, rec)  # the fields are mapped, and refused, where the change is emitted
    stages = [dict(h)["dlq.stage"] for _k, _v, h in rec.take("dlq")]
    assert stages == [b"transform", b"transform"]


async def test_a_run_of_rejected_changes_pauses_the_map_and_parks_the_rest(tmp_path):
    from streams.wire import ControlMsg
    from topics import MapState, decode_model

    config = StreamsConfig(app_id=f"unit-{uuid.uuid4().hex[:8]}", store="memory://",
                           data_dir=tmp_path, partitions=1, tx_timeout_ms=0, pause_after_rejections=2)
    app = create_app(config)
    app.finalize()
    rt = app.runtime
    rec = wire(rt)
    # statecode 9 has no value map entry: the projects map rejects these once its lookups are known.
    broken = [(f"p-{i}", change("msdyn_projects", rows.project(msdyn_projectid=f"p-{i}",
                                                              msdyn_projectnumber=f"PRJ-{i}", statecode=9), 7))
              for i in range(3)]
    await ingest_all(rt, [(rows.COMPANY, change("cdm_companies", COMPANY_ROW, 1)),
                          (rows.ACCOUNT, change("accounts", ACCOUNT_ROW, 1)), *broken])
    await pump(rt, rec)
    assert len(rec.take("dlq")) == 2  # the run that trips the guard...
    [(key, value, _)] = rec.take("control")
    state = decode_model(MapState, value)
    assert key == b"projects" and state.state == "paused" and "dualwrite maps resume" in (state.reason or "")
    parked = [i for k, i in waiting_in(dict(rt.table("parked").items())) if k == "paused:projects@0"]
    assert [p["source"]["id"] for p in parked] == ["p-2"]  # ...and the rest waits, not in the DLQ
    # Resumed without a fix: the parked change is tried again and rejected again.
    await pump(rt, rec, [(b"control:projects", encode_gate(ControlMsg(map="projects", state="running")))])
    assert len(rec.take("dlq")) == 1 and commands(rec) == []


def dead_letters(rec: Recorded) -> list[tuple[str, str, str, str]]:
    out = []
    for _key, _value, headers in rec.take("dlq"):
        h = {k: v.decode() for k, v in headers}
        out.append((h["dlq.stage"], h.get("dlq.map", "-"), h["dlq.error.class"], h["dlq.error.message"]))
    return out


def acked(command: Any, version: int) -> tuple[bytes, bytes]:
    """The gate record of Finance's ack of ``command`` (as the acks agent re-keys it)."""
    from streams.wire import AppliedMsg
    from topics import Applied

    ack = Applied(command_id=command.command_id, map=command.map, target="finance",
                  entity=command.entity, key=command.key, op="upsert", source_version=version,
                  source_system="dataverse", source_table=command.source.table,
                  source_id=command.source.id, fingerprint=command.fingerprint,
                  target_id="5637144576", applied_ts_ms=1)
    return f"present:{command.record_key}".encode(), encode_gate(AppliedMsg(ack=ack))


LOOKUPS = [(rows.COMPANY, change("cdm_companies", COMPANY_ROW, 1)),
           (rows.ACCOUNT, change("accounts", ACCOUNT_ROW, 1))]


def project_change(number: str, version: int = 7, **extra: Any) -> tuple[str, bytes]:
    record_id = f"p-{number}"
    return record_id, change("msdyn_projects", rows.project(msdyn_projectid=record_id,
                                                            msdyn_projectnumber=number, **extra), version)


async def test_wrong_value_types_are_dead_letters_and_the_line_goes_on(rt):
    rec = wire(rt)
    await ingest_all(rt, [*LOOKUPS, project_change("PRJ-L", statecode=[0]),
                          project_change("PRJ-D", _msdyn_owningcompany_value={"id": rows.COMPANY}),
                          project_change("PRJ-1")])
    await pump(rt, rec)
    assert [c.key["ProjectId"] for c in commands(rec)] == ["PRJ-1"]
    letters = dead_letters(rec)
    assert sorted(letters) == [
        ("transform", "projects", "TransformError",
         "map 'projects': field 'ProjectStage' must be a scalar, got list"),
        ("transform", "projects", "TransformError",
         "map 'projects': lookup column '_msdyn_owningcompany_value' must be a string or an integer, "
         "got dict")]


@pytest.mark.interpreted  # it patches route_change and first_step, which compiled code calls directly
async def test_any_error_of_one_change_is_a_dead_letter_of_its_stage(rt, monkeypatch):
    """Errors no check foresaw, at each guarded step: that change only goes to the DLQ."""
    import streams.handlers
    import streams.ingest
    import streams.route

    def failing(real: Any, number: str, exc: Exception) -> Any:
        def call(item: Any, *args: Any) -> Any:
            if item.row.get("msdyn_projectnumber") == number:
                raise exc
            return real(item, *args)
        return call

    def failing_route(real: Any) -> Any:
        def call(maps: Any, system: str, table: str, record_id: str, *args: Any, **kwargs: Any) -> Any:
            if record_id == "p-PRJ-R":
                raise RecursionError("deep")
            return real(maps, system, table, record_id, *args, **kwargs)
        return call

    monkeypatch.setattr(streams.ingest, "route_change", failing_route(streams.ingest.route_change))
    monkeypatch.setattr(streams.route, "first_step",
                        failing(streams.route.first_step, "PRJ-I", KeyError("at ingest")))
    monkeypatch.setattr(streams.handlers, "planned",
                        failing(streams.handlers.planned, "PRJ-P", OverflowError("in plan")))
    monkeypatch.setattr(streams.handlers, "to_command",
                        failing(streams.handlers.to_command, "PRJ-E", ValueError("in emit")))
    rec = wire(rt)
    await ingest_all(rt, [*LOOKUPS, *(project_change(n) for n in ("PRJ-R", "PRJ-I", "PRJ-P", "PRJ-E",
                                                                   "PRJ-1"))])
    await pump(rt, rec)
    assert [c.key["ProjectId"] for c in commands(rec)] == ["PRJ-1"]
    assert sorted(dead_letters(rec)) == [
        ("emit", "projects", "ValueError", "in emit"),
        ("plan", "projects", "KeyError", "'at ingest'"),
        ("plan", "projects", "OverflowError", "in plan"),
        ("route", "-", "RecursionError", "deep")]


async def test_a_create_whose_delete_was_read_meanwhile_is_not_written(rt):
    """The task's create waits for its project; its delete arrives meanwhile. Once the project
    is there the create is dropped (its record is gone), and the delete waits for a key that is
    never written: no row is made and nothing is deleted (chaos run of issue 9: a child created
    after its parent's delete was refused by Finance and dead-lettered)."""
    from streams import metrics

    rec = wire(rt)
    waiting = metrics.PARKED.labels("project_tasks", metrics.DELETE_UNWRITTEN)
    before = waiting._value.get()
    gone = encode(ChangeEvent(before=None, after=None, op="d", ts_ms=1, source=Source(
        system="dataverse", table="msdyn_projecttasks", version="3", ts_ms=1)))
    await ingest_all(rt, [*LOOKUPS, ("t-guid-1", change("msdyn_projecttasks", rows.task(), 2)),
                          ("t-guid-1", gone)])
    await pump(rt, rec)
    assert commands(rec) == [] and waiting._value.get() == before + 1
    await ingest_all(rt, [(rows.PROJECT, change("msdyn_projects", rows.project(), 7))])
    await pump(rt, rec)
    [project] = commands(rec)
    overtaken = metrics.DROPPED.labels("project_tasks", metrics.OVERTAKEN)
    dropped = overtaken._value.get()
    await pump(rt, rec, [acked(project, 7)])
    assert commands(rec) == [] and overtaken._value.get() == dropped + 1
    assert rec.take("dlq") == []


async def test_a_delete_never_removes_a_row_another_record_wrote_last(rt):
    """A WBS id freed by one task and taken by a new one: the old task's late delete is stale."""

    rec = wire(rt)
    await ingest_all(rt, [*LOOKUPS, (rows.PROJECT, change("msdyn_projects", rows.project(), 7))])
    await pump(rt, rec)
    [project] = commands(rec)
    await pump(rt, rec, [acked(project, 7)])
    old = rows.task(msdyn_projecttaskid="t-old")
    new = rows.task(msdyn_projecttaskid="t-new", msdyn_subject="Replacement")
    await ingest_all(rt, [("t-old", change("msdyn_projecttasks", old, 2)),
                          ("t-new", change("msdyn_projecttasks", new, 4))])
    await pump(rt, rec)
    assert [(c.source.id, c.op) for c in commands(rec)] == [("t-old", "upsert"), ("t-new", "upsert")]
    gone = encode(ChangeEvent(before=None, after=None, op="d", ts_ms=1, source=Source(
        system="dataverse", table="msdyn_projecttasks", version="3", ts_ms=1)))
    await ingest_all(rt, [("t-old", gone)])
    await pump(rt, rec)
    assert commands(rec) == []  # the row is t-new's now


async def test_a_delete_never_removes_a_row_another_record_took_over_unchanged(rt):
    """The same, when the new task carries the very same values: its upsert is a no-op, and
    the row must still be the new task's (fuzz run: DW-00001/2 lost)."""

    rec = wire(rt)
    await ingest_all(rt, [*LOOKUPS, (rows.PROJECT, change("msdyn_projects", rows.project(), 7))])
    await pump(rt, rec)
    [project] = commands(rec)
    await pump(rt, rec, [acked(project, 7)])
    await ingest_all(rt, [("t-old", change("msdyn_projecttasks", rows.task(msdyn_projecttaskid="t-old"), 2))])
    await pump(rt, rec)
    [old] = commands(rec)
    await pump(rt, rec, [acked(old, 2)])
    await ingest_all(rt, [("t-new", change("msdyn_projecttasks", rows.task(msdyn_projecttaskid="t-new"), 4))])
    await pump(rt, rec)
    assert commands(rec) == []  # the row holds these values already: a no-op
    gone = encode(ChangeEvent(before=None, after=None, op="d", ts_ms=1, source=Source(
        system="dataverse", table="msdyn_projecttasks", version="3", ts_ms=1)))
    await ingest_all(rt, [("t-old", gone)])
    await pump(rt, rec)
    assert commands(rec) == []  # the row is t-new's now, unchanged


def _nested_change(number: str, depth: int) -> tuple[str, bytes]:
    """A project change one of whose columns nests ``depth`` levels (as raw JSON: no encoder
    writes that deep, but a parser reads it)."""
    record_id, value = project_change(number)
    marker = b'"msdyn_description":null'
    event = value.replace(b'"after":{', b'"after":{' + marker + b",", 1)
    return record_id, event.replace(marker, b'"msdyn_description":' + b'{"x":' * depth + b'"deep"' + b"}" * depth)


async def test_a_change_whose_gate_message_cannot_be_built_or_sent_is_a_dead_letter(rt):
    """Nesting deeper than pydantic serialises, or a gate message over the producer's limit:
    before, the agent raised on the same record again and again (a crash loop, the record lost)."""
    rec = wire(rt)
    huge_id = "p-" + "x" * 1_100_000
    await ingest_all(rt, [*LOOKUPS,
                          _nested_change("PRJ-N", 300),
                          (huge_id, change("msdyn_projects", rows.project(msdyn_projectid=huge_id,
                                                                          msdyn_projectnumber="PRJ-H"), 7)),
                          project_change("PRJ-1")])
    await pump(rt, rec)
    assert [c.key["ProjectId"] for c in commands(rec)] == ["PRJ-1"]
    letters = sorted((stage, error) for stage, _map, error, _message in dead_letters(rec))
    assert letters == [("route", "GateRecordTooLarge"), ("route", "PydanticSerializationError")]


async def test_a_change_whose_facts_the_worker_knows_crosses_the_gate_topic_once(rt):
    """Issue 9: a project whose company and customer rows this worker has seen goes from ingest
    straight to its emit key; only the key fact it publishes makes a second gate record, and
    the first time the worker sees the project, its presence in Dataverse (expense lines bind
    it; an update of a project whose presence the worker knows does not send it again)."""
    rec = wire(rt)
    await ingest_all(rt, [(rows.COMPANY, change("cdm_companies", COMPANY_ROW, 1)),
                          (rows.ACCOUNT, change("accounts", ACCOUNT_ROW, 1))])
    await pump(rt, rec)
    await ingest_all(rt, [(rows.PROJECT, change("msdyn_projects", rows.project(), 7))])
    gate = rec.take("gate")
    assert [k.decode().split("(")[0] for k, _, _ in gate if k.decode().startswith("present:")] == \
        ["present:ProjectsV2", "present:msdyn_projects"]
    assert not [k for k, _, _ in gate if k.decode().startswith("row:")]  # no lookup hop
    handled = len(gate)
    async with agent(rt, "gate").test_context() as g:
        queue = [(k, v) for k, v, _ in gate]
        while queue:
            key, value = queue.pop(0)
            await g.put(value, key=key)
            more = [(k, v) for k, v, _ in rec.take("gate")]
            handled += len(more)
            queue.extend(more)
    assert [c.key["ProjectId"] for c in commands(rec)] == [rows.project()["msdyn_projectnumber"]]
    assert handled == 3  # the change at its emit key, the key fact it publishes, the presence


async def test_a_fact_the_worker_does_not_know_is_still_asked_at_the_gate(rt):
    rec = wire(rt)
    await ingest_all(rt, [(rows.PROJECT, change("msdyn_projects", rows.project(), 7))])
    assert [k for n, k, _, _ in rec.sent if n == "gate" and k == rows.COMPANY_FACT.encode()]  # waits there
    await ingest_all(rt, [(rows.COMPANY, change("cdm_companies", COMPANY_ROW, 1)),
                          (rows.ACCOUNT, change("accounts", ACCOUNT_ROW, 1))])
    await pump(rt, rec)
    assert len(commands(rec)) == 1


async def test_the_parked_age_gauge_shows_the_oldest_waiting_change_per_map(rt):
    """Issue 12: the worker's gauge of the oldest parked change per map (0: none waits), kept
    from the first park when the change moves on to wait for something else."""
    from streams import metrics
    from streams.agents import observe_parked_age
    from streams.wire import ControlMsg

    def gauge(name: str) -> float:
        return float(metrics.PARKED_OLDEST_AGE.labels(name)._value.get())

    rec = wire(rt)
    pause = encode_gate(ControlMsg(map="project_tasks", state="paused"))
    await pump(rt, rec, [(b"control:project_tasks", pause)])
    await ingest_all(rt, [("t-1", change("msdyn_projecttasks", rows.task(msdyn_projecttaskid="t-1"), 2))])
    await pump(rt, rec)
    [(_key, item)] = list(waiting_in(dict(rt.table("parked").items())))
    observe_parked_age(rt, int(item["parked_ms"]) + 90_000)
    assert gauge("project_tasks") == 90.0 and gauge("projects") == 0.0
    resume = encode_gate(ControlMsg(map="project_tasks", state="running"))
    await pump(rt, rec, [(b"control:project_tasks", resume)])
    waiting = list(waiting_in(dict(rt.table("parked").items())))
    observe_parked_age(rt, int(item["parked_ms"]) + 95_000)
    # Resumed, the task now waits for its project (another slot): still the same change's age.
    assert [i["id"] for _k, i in waiting] == [item["id"]]
    assert gauge("project_tasks") == 95.0


async def test_a_project_manager_without_a_bookable_resource_does_not_park_the_project(rt):
    """ProjectManagerPersonnelNumber: through the manager's bookable resource when it has one;
    a manager who is none is written without it, not parked for ever (optional lookup)."""
    rec = wire(rt)
    alice = {"bookableresourceid": "r-alice", "name": "Alice Adams", "_userid_value": "u-alice",
             "msdyn_personnelnumber": "000101", "_msdyn_company_value": rows.COMPANY}
    await ingest_all(rt, [*LOOKUPS, ("r-alice", change("bookableresources", alice, 2)),
                          project_change("PRJ-A", _msdyn_projectmanager_value="u-alice"),
                          project_change("PRJ-C", _msdyn_projectmanager_value="u-carla")])
    await pump(rt, rec)
    managers = {c.key["ProjectId"]: c.fields["ProjectManagerPersonnelNumber"]
                for c in commands(rec) if c.entity == "ProjectsV2"}
    assert managers == {"PRJ-A": "000101", "PRJ-C": None}
    assert list(waiting_in(dict(rt.table("parked").items()))) == []
    assert rec.take("dlq") == []


def test_store_reads_read_the_tables_store_and_miss_as_the_table_does(rt: Runtime) -> None:
    from streams.gatekeeper import StoreReads

    table = rt.table("targets")
    reads = StoreReads(table)
    table.data["present:a"] = {"v": 1}  # what a write in a stream stores (outside one, tables refuse)
    assert reads.get("present:a") == {"v": 1} == reads["present:a"] == table.get("present:a")
    assert list(reads) == ["present:a"] and len(reads) == 1
    assert reads.get("present:b") is None is table.get("present:b") and reads.get("present:b", 7) == 7
    with pytest.raises(KeyError):
        reads["present:b"]


async def test_ingest_tells_each_change_the_version_of_its_record_seen_before(rt):
    """`Pending.prev_version`: what lets the gate skip a key fact the previous version sent."""
    rec = wire(rt)
    await ingest_all(rt, [(rows.PROJECT, change("msdyn_projects", rows.project(), 7)),
                          (rows.PROJECT, change("msdyn_projects", rows.project(msdyn_subject="Renamed"), 9)),
                          (rows.PROJECT, change("msdyn_projects", rows.project(msdyn_subject="Again"), 12))])
    changes = [msg.item for _k, value, _h in rec.take("gate")
               if isinstance(msg := decode_gate(value), PendingMsg)]
    assert [(c.source.version, c.prev_version) for c in changes] == [(7, None), (9, 7), (12, 9)]


async def test_a_revocation_forgets_the_fact_view_and_the_key_facts_sent(rt):
    """After partitions move, facts this worker learned and key facts it sent may be another
    worker's to change: the view asks the gate again, and the next emit sends its key fact."""
    rec = wire(rt)
    await ingest_all(rt, [(rows.COMPANY, change("cdm_companies", COMPANY_ROW, 1)),
                          (rows.ACCOUNT, change("accounts", ACCOUNT_ROW, 1))])
    await pump(rt, rec)
    handled: list[bytes] = []
    for version, subject in ((7, "First"), (9, "Second")):
        await ingest_all(rt, [(rows.PROJECT, change("msdyn_projects", rows.project(msdyn_subject=subject), version))])
        await pump(rt, rec, handled=handled)
    assert len([k for k in handled if k.startswith(b"key:")]) == 1  # the second emit skipped it

    await rt.app.on_partitions_revoked.send(set())

    handled.clear()
    await ingest_all(rt, [(rows.PROJECT, change("msdyn_projects", rows.project(msdyn_subject="Third"), 12))])
    assert rows.COMPANY_FACT.encode() in [k for n, k, _v, _h in rec.sent if n == "gate"]  # asked again
    await pump(rt, rec, handled=handled)
    assert len([k for k in handled if k.startswith(b"key:")]) == 1  # sent again
    assert len(commands(rec)) == 3
