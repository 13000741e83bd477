import pytest

from streams.maps import default_registry
from streams.route import route_change
from streams.wire import FactMsg, ObservedMsg, PendingMsg, decode_gate, encode_gate
from tests.unit.streams import rows
from topics import ChangeEvent
from topics.envelope import Source

pytestmark = pytest.mark.unit

MAPS = default_registry()


def event(system: str, table: str, row: dict, op: str = "u") -> ChangeEvent:
    return ChangeEvent(before=row if op == "d" else None, after=None if op == "d" else row,
                       op=op, ts_ms=1, source=Source(system=system, table=table, version="4", ts_ms=1))


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
    assert [(k, type(m)) for k, m in out.messages] == [(rows.COMPANY_FACT, PendingMsg)]
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
