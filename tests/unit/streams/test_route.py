import pytest

from streams.maps import default_registry, present_fact, row_fact
from streams.pending import Emit, Pending, plan, planned
from streams.route import route_change
from streams.transform import TransformError
from streams.wire import (
    FactMsg,
    MemberMsg,
    ObservedMsg,
    PendingMsg,
    TxMsg,
    decode_gate,
    encode_gate,
)
from tests.unit.streams import rows
from topics import ChangeEvent, TransactionBlock, target_key
from topics.envelope import Source

pytestmark = pytest.mark.unit

MAPS = default_registry()


def event(system: str, table: str, row: dict, op: str = "u") -> ChangeEvent:
    return ChangeEvent(before=row if op == "d" else None, after=None if op == "d" else row,
                       op=op, ts_ms=1, source=Source(system=system, table=table, version="4", ts_ms=1))


def changes(out):
    """The routed messages but the project's presence (a Finance expense line binds the project
    by it: `test_expense_maps`)."""
    return [(k, m) for k, m in out.messages if not k.startswith("present:msdyn_projects(")]


def test_company_row_is_indexed_and_observed_as_legal_entity_target():
    row = {"cdm_companyid": rows.COMPANY, "cdm_companycode": "usmf", "cdm_name": "Contoso USA",
           "accountingcurrency": "USD"}
    out = route_change(MAPS, "dataverse", "cdm_companies", rows.COMPANY,
                       event("dataverse", "cdm_companies", row), 0)
    kinds = {type(m).__name__: (k, m) for k, m in out.messages}
    assert kinds["FactMsg"][0] == rows.COMPANY_FACT
    assert kinds["FactMsg"][1].value == {"cdm_companycode": "usmf"}
    key, observed = kinds["ObservedMsg"]
    assert key == rows.COMPANY_PRESENT
    assert isinstance(observed, ObservedMsg) and observed.target_id == rows.COMPANY


def test_project_change_goes_to_its_first_lookup():
    out = route_change(MAPS, "dataverse", "msdyn_projects", rows.PROJECT,
                       event("dataverse", "msdyn_projects", rows.project()), 0)
    assert [(k, type(m)) for k, m in changes(out)] == [(rows.COMPANY_FACT, PendingMsg)]
    item = out.messages[0][1].item  # type: ignore[union-attr]
    assert item.id == f"projects:{rows.PROJECT}:4" and item.op == "upsert"


def test_filtered_project_is_dropped_not_sent():
    out = route_change(MAPS, "dataverse", "msdyn_projects", rows.PROJECT,
                       event("dataverse", "msdyn_projects", rows.project(msdyn_projectnumber=None)), 0)
    assert out.messages == [] and out.dropped and out.dropped[0][0] == "projects"


def test_value_map_is_checked_once_the_lookups_are_known():
    row = rows.project(statecode=9)
    out = route_change(MAPS, "dataverse", "msdyn_projects", rows.PROJECT,
                       event("dataverse", "msdyn_projects", row), 0)
    assert out.messages and not out.rejected  # lookups first: the value map is checked later


def test_gate_messages_round_trip():
    msg = FactMsg(key="k", value={"a": 1})
    assert decode_gate(encode_gate(msg)) == msg


def in_tx(e: ChangeEvent, order: int, count: int) -> ChangeEvent:
    return e.model_copy(update={
        "source": e.source.model_copy(update={"txid": "tx-5"}),
        "transaction": TransactionBlock(id="tx-5", total_order=order, data_collection_order=1,
                                        event_count=count)})


def test_an_event_of_a_transaction_goes_to_the_transaction_with_its_changes():
    e = in_tx(event("dataverse", "msdyn_projects", rows.project()), order=2, count=3)
    out = route_change(MAPS, "dataverse", "msdyn_projects", rows.PROJECT, e, 0)
    ((key, msg),) = changes(out)
    assert key == "tx:dataverse:tx-5" and isinstance(msg, TxMsg)
    assert msg.event == f"dataverse:msdyn_projects:{rows.PROJECT}:4" and msg.total == 3
    (item,) = msg.items
    assert item.map == "projects" and item.tx_total == 3 and item.tx_order == 2


def test_an_event_no_map_reads_still_counts_for_its_transaction():
    row = {"cdm_companyid": rows.COMPANY, "cdm_companycode": "usmf"}
    e = in_tx(event("dataverse", "cdm_companies", row), order=1, count=3)
    out = route_change(MAPS, "dataverse", "cdm_companies", rows.COMPANY, e, 0)
    txs = [m for _, m in out.messages if isinstance(m, TxMsg)]
    assert len(txs) == 1 and txs[0].items == [] and txs[0].total == 3
    # A company is also a member of the roles map's fan-out.
    assert {type(m) for _, m in out.messages} == {FactMsg, ObservedMsg, TxMsg, MemberMsg}


def test_a_transaction_of_one_event_is_not_held():
    e = in_tx(event("dataverse", "msdyn_projects", rows.project()), order=1, count=1)
    out = route_change(MAPS, "dataverse", "msdyn_projects", rows.PROJECT, e, 0)
    assert [(k, type(m)) for k, m in changes(out)] == [(rows.COMPANY_FACT, PendingMsg)]


def test_a_delete_without_a_before_image_goes_to_the_key_its_record_was_written_under():
    gone = ChangeEvent(before=None, after=None, op="d", ts_ms=1,
                       source=Source(system="dataverse", table="msdyn_projecttasks", version="9", ts_ms=1))
    out = route_change(MAPS, "dataverse", "msdyn_projecttasks", "t-guid-1", gone, 0)
    assert [(k, type(m)) for k, m in out.messages] == [("key:project_tasks:t-guid-1", PendingMsg)]
    assert out.messages[0][1].item.op == "delete"  # type: ignore[union-attr]
    assert not out.dropped and not out.rejected


@pytest.mark.parametrize(("table", "row", "expected"), [
    ("msdyn_projects", rows.project(_msdyn_owningcompany_value=[rows.COMPANY]),
     ("projects", "transform", "TransformError", "lookup column '_msdyn_owningcompany_value'")),
    ("msdyn_projecttasks", rows.task(_msdyn_project_value={"id": rows.PROJECT}),
     ("project_tasks", "transform", "TransformError", "lookup column '_msdyn_project_value'")),
    ("ProjectsV2", {"dataAreaId": "usmf", "ProjectId": ["PRJ-1"], "RecId": 1},
     ("projects", "route", "TransformError", "target key field 'ProjectId' must be a scalar")),
])
def test_a_list_or_object_where_a_scalar_belongs_is_rejected_with_its_stage(table, row, expected):
    system = "finance" if table == "ProjectsV2" else "dataverse"
    out = route_change(MAPS, system, table, "r-1", event(system, table, row), 0)
    [rejected] = out.rejected
    assert (rejected.map, rejected.stage, rejected.error) == expected[:3]
    assert expected[3] in rejected.message
    assert not [m for _k, m in out.messages if isinstance(m, (PendingMsg, ObservedMsg))]


KNOWN = {rows.COMPANY_FACT: {"cdm_companycode": "usmf"},
         rows.ACCOUNT_FACT: {"accountnumber": "US-001", "msdyn_company": "usmf"}}


def test_a_change_whose_lookups_are_known_goes_straight_to_its_emit_key():
    out = route_change(MAPS, "dataverse", "msdyn_projects", rows.PROJECT,
                       event("dataverse", "msdyn_projects", rows.project()), 0, KNOWN.get)
    [(key, msg)] = changes(out)
    assert key.startswith("present:ProjectsV2(") and isinstance(msg, PendingMsg)
    assert set(msg.item.facts) == {rows.COMPANY_FACT, rows.ACCOUNT_FACT}


def test_a_lookup_the_view_does_not_know_is_still_asked_at_the_gate():
    known = {rows.COMPANY_FACT: KNOWN[rows.COMPANY_FACT]}
    out = route_change(MAPS, "dataverse", "msdyn_projects", rows.PROJECT,
                       event("dataverse", "msdyn_projects", rows.project()), 0, known.get)
    [(key, msg)] = changes(out)
    assert key == rows.ACCOUNT_FACT and set(msg.item.facts) == {rows.COMPANY_FACT}  # type: ignore[union-attr]


def test_a_change_whose_fields_the_map_refuses_is_refused_at_the_gate_not_at_ingest():
    """Ingest maps only the target key (the step's key is all it asks); the fields are mapped,
    and refused, where the change is emitted: the gate, which can park it when its map is paused."""
    out = route_change(MAPS, "dataverse", "msdyn_projects", rows.PROJECT,
                       event("dataverse", "msdyn_projects", rows.project(statecode=9)), 0, KNOWN.get)
    assert not out.rejected
    [(key, msg)] = changes(out)
    assert key.startswith("present:ProjectsV2(") and isinstance(msg, PendingMsg)
    with pytest.raises(TransformError, match="no value map entry for 9"):
        plan(msg.item, MAPS)
    with pytest.raises(TransformError, match="no value map entry for 9"):  # not the key-only step
        planned(msg.item, MAPS)


@pytest.mark.interpreted  # patches what compiled code calls directly (streams.native)
def test_the_gate_takes_the_step_ingest_planned_for_the_same_change_without_planning_again(monkeypatch):
    """The batch engine hands the gate the very objects ingest routed: the full step ingest
    planned is the gate's, once; a copy of the change (from the gate topic) is planned anew."""
    import streams.pending

    out = route_change(MAPS, "dataverse", "msdyn_projects", rows.PROJECT,
                       event("dataverse", "msdyn_projects", rows.project()), 0, KNOWN.get)
    [(_key, msg)] = changes(out)
    item = msg.item  # type: ignore[union-attr]
    copy = Pending.model_validate(item.model_dump())
    expected = plan(copy, MAPS)
    assert isinstance(expected, Emit) and expected.mapped.fields

    def no_transform(*args, **kwargs):
        raise AssertionError("transformed again")

    monkeypatch.setattr(streams.pending, "transform", no_transform)
    assert planned(item, MAPS) == expected
    with pytest.raises(AssertionError, match="transformed again"):
        planned(item, MAPS)  # kept once
    with pytest.raises(AssertionError, match="transformed again"):
        planned(copy, MAPS)


def test_a_routed_change_and_its_source_equal_the_validated_models():
    """`Pending.trusted` and `CommandSource.trusted` skip validation on the hot path: what they
    build must be what validation builds, field for field and on the wire."""
    tx = TransactionBlock(id="t9", total_order=2, data_collection_order=1, event_count=3)
    for redriven in (False, True):
        for ev in (event("dataverse", "msdyn_projects", rows.project()),
                   event("dataverse", "msdyn_projects", rows.project(), op="d"),
                   event("dataverse", "msdyn_projects", rows.project()).model_copy(update={"transaction": tx})):
            out = route_change(MAPS, "dataverse", "msdyn_projects", rows.PROJECT, ev, 7, KNOWN.get,
                               redriven=redriven, prev_version=3)
            items = [m.item for _k, m in out.messages if isinstance(m, PendingMsg)]
            items += [i for _k, m in out.messages if isinstance(m, TxMsg) for i in m.items]
            assert items
            for item in items:
                validated = Pending.model_validate(item.model_dump())
                assert item == validated and item.source == validated.source
                assert encode_gate(PendingMsg(item=item)) == encode_gate(PendingMsg(item=validated))
                assert list(item.__dict__) == list(Pending.model_fields)
                assert item.source.redriven is redriven


def test_a_change_refused_once_a_known_row_is_added_goes_to_the_gate_to_be_refused_there():
    """Only the gate can park it when its map is paused: it leaves as it would without the view
    (the view's two rows are added at once, so without either)."""
    out = route_change(MAPS, "dataverse", "msdyn_projects", rows.PROJECT,
                       event("dataverse", "msdyn_projects", rows.project(msdyn_projectnumber=["PRJ-1"])),
                       0, KNOWN.get)
    assert not out.rejected
    [(key, msg)] = changes(out)
    assert key == rows.COMPANY_FACT and not msg.item.facts  # type: ignore[union-attr]


def _plans_recorded(monkeypatch) -> list[tuple[Pending, dict]]:
    """Each plan ingest makes, in order: the item planned and the keywords it was given
    (`streams.route.plan` recorded)."""
    import streams.route

    plans: list[tuple[Pending, dict]] = []

    def recording(item, maps, **kwargs):
        plans.append((item, kwargs))
        return plan(item, maps, **kwargs)

    monkeypatch.setattr(streams.route, "plan", recording)
    return plans


MANAGER, RESOURCE = "u-guid-alice", "r-guid-alice"
MANAGER_PRESENT = present_fact(target_key("bookableresources", {"_userid_value": MANAGER}))
RESOURCE_ROW = row_fact("dataverse", "bookableresources", RESOURCE)
# The project manager's bookable resource and its row known too: the chained lookup's rows.
KNOWN_CHAINED = {**KNOWN, MANAGER_PRESENT: {"target_id": RESOURCE}, RESOURCE_ROW: {"msdyn_personnelnumber": "000101"}}


@pytest.mark.interpreted  # patches what compiled code calls directly (streams.native)
def test_the_lookup_rows_the_view_knows_are_added_in_one_step(monkeypatch):
    """A project's company and customer, both known: added before the one plan of the change,
    not a plan more per lookup (an actual has six)."""
    plans = _plans_recorded(monkeypatch)
    out = route_change(MAPS, "dataverse", "msdyn_projects", rows.PROJECT,
                       event("dataverse", "msdyn_projects", rows.project()), 0, KNOWN.get)
    [(key, _msg)] = changes(out)
    assert key.startswith("present:ProjectsV2(")
    assert [set(item.facts) for item, _kw in plans] == [{rows.COMPANY_FACT, rows.ACCOUNT_FACT}]


@pytest.mark.interpreted  # patches what compiled code calls directly (streams.native)
def test_a_chained_lookup_the_view_knows_is_added_with_the_row_it_reads_through(monkeypatch):
    """A project manager's personnel number is read through their bookable resource: both rows
    known, the change is planned once, with both."""
    plans = _plans_recorded(monkeypatch)
    out = route_change(MAPS, "dataverse", "msdyn_projects", rows.PROJECT,
                       event("dataverse", "msdyn_projects", rows.project(_msdyn_projectmanager_value=MANAGER)),
                       0, KNOWN_CHAINED.get)
    [(key, msg)] = changes(out)
    assert key.startswith("present:ProjectsV2(") and isinstance(msg, PendingMsg)
    assert [set(item.facts) for item, _kw in plans] == [
        {rows.COMPANY_FACT, rows.ACCOUNT_FACT, MANAGER_PRESENT, RESOURCE_ROW}]
    assert planned(msg.item, MAPS).mapped.fields["ProjectManagerPersonnelNumber"] == "000101"  # type: ignore[union-attr]


@pytest.mark.interpreted  # patches what compiled code calls directly (streams.native)
def test_a_plan_given_the_lookups_worked_out_at_ingest_is_given_those_of_the_item_it_plans(monkeypatch):
    """Ingest works out a change's lookups to find the rows the view knows, and hands them to
    the change's first plan, which would work them out again: they must be the lookups of the
    very item planned. Among the cases: a chained lookup (its key is known only through the
    row before it), and a change refused with the rows found, walked again without them."""
    from streams.transform import lookup_facts

    plans = _plans_recorded(monkeypatch)
    cases = [(rows.project(), KNOWN), (rows.project(), {rows.COMPANY_FACT: KNOWN[rows.COMPANY_FACT]}),
             (rows.project(), {}), (rows.project(_msdyn_projectmanager_value=MANAGER), KNOWN_CHAINED),
             (rows.project(_msdyn_projectmanager_value=MANAGER, msdyn_projectnumber=["PRJ-1"]), KNOWN_CHAINED)]
    for row, known in cases:
        route_change(MAPS, "dataverse", "msdyn_projects", rows.PROJECT, event("dataverse", "msdyn_projects", row),
                     0, known.get)
    handed = [(item, kw["wanted"]) for item, kw in plans if kw.get("wanted") is not None]
    assert len(handed) >= len(cases)
    for item, wanted in handed:
        assert wanted == lookup_facts(MAPS[item.map], item.row, facts=item.facts)


def test_a_lookup_row_carries_its_version_to_the_gate():
    row = {"cdm_companyid": rows.COMPANY, "cdm_companycode": "usmf"}
    out = route_change(MAPS, "dataverse", "cdm_companies", rows.COMPANY,
                       event("dataverse", "cdm_companies", row), 0)
    [fact] = [m for _, m in out.messages if isinstance(m, FactMsg)]
    assert fact.version == 4


def test_a_finance_customer_is_a_presence_fact_for_the_contracts_that_wait_for_it():
    """No map writes Finance customers, so their presence comes from their own feed: a contract
    header waits for its customer in Finance (`MapRegistry.presence_keys`)."""
    row = {"dataAreaId": "usmf", "CustomerAccount": "US-042", "Name": "Adatum", "RecId": 5637144999}
    key = "present:CustomersV3(CustomerAccount='US-042',dataAreaId='usmf')"
    made = ChangeEvent(op="c", after=row, ts_ms=1,
                       source=Source(system="finance", table="CustomersV3", version="40", ts_ms=1))
    out = route_change(MAPS, "finance", "CustomersV3", "usmf|US-042", made, 0)
    assert (key, FactMsg(key=key, value={"target_id": "5637144999"}, version=40)) in out.messages
    gone = ChangeEvent(op="d", before=row, ts_ms=2,
                       source=Source(system="finance", table="CustomersV3", version="41", ts_ms=2))
    out = route_change(MAPS, "finance", "CustomersV3", "usmf|US-042", gone, 0)
    assert (key, FactMsg(key=key, value=None, version=41)) in out.messages
    assert MAPS.presence_keys("finance", "ProjectsV2") == []  # written by a map: acks and echoes tell
