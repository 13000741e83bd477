"""Fan-out maps (`FanOut`): one Dataverse role written once per legal entity, at the gate's
``fanout:<map>`` key, as pure handler effects. No Faust."""

from __future__ import annotations

from typing import Any

import pytest

from streams import metrics
from streams.effects import Count, GateSend
from streams.handlers import on_member, on_pending
from streams.maps import fanout_key
from streams.pending import Emit, Need, Pending, Spread, plan
from streams.route import route_change
from streams.wire import MemberMsg, PendingMsg
from tests.unit.streams.test_handlers import MAPS, apply, at, counted, of, run, tables
from topics import ChangeEvent, CommandSource
from topics.envelope import Source

pytestmark = pytest.mark.unit

HUB = fanout_key("resource_roles")
ROLE_ID = "f1d67c7a-77f0-57bf-aec3-b4ac9d1c5a02"


def role(version: int = 5, op: str = "upsert", name: str = "Project Manager") -> Pending:
    source = CommandSource(system="dataverse", table="bookableresourcecategories", id=ROLE_ID,
                           version=version, ts_ms=1_000)
    row = {"bookableresourcecategoryid": ROLE_ID, "name": name} if op == "upsert" else {}
    return Pending(id=f"resource_roles:{ROLE_ID}:{version}", map="resource_roles", op=op, row=row,
                   source=source, born_ms=0)


def member(code: str, version: int = 1, deleted: bool = False) -> MemberMsg:
    return MemberMsg(map="resource_roles", member=code, version=version, deleted=deleted)


def sent(effects: list[Any]) -> list[Pending]:
    return [e.msg.item for e in of(GateSend, effects) if isinstance(e.msg, PendingMsg)]


def test_a_role_is_planned_to_the_hub_and_each_copy_to_its_own_finance_key():
    assert plan(role(), MAPS) == Spread(HUB)
    copy = role().for_member(MAPS["resource_roles"], "demf")
    step = plan(copy, MAPS)
    assert isinstance(step, Emit)
    assert step.mapped.key == {"dataAreaId": "demf", "RoleId": "Project Manager"}
    assert step.mapped.fields["SourceDataId"] == ROLE_ID
    assert step.publish == ((f"key:resource_roles:{ROLE_ID}@demf", step.mapped.key),)
    assert copy.id == f"resource_roles:{ROLE_ID}@demf:5"


def test_a_role_is_written_for_every_member_and_a_new_member_gets_every_role():
    state = tables()
    for offset, code in enumerate(("usmf", "demf"), start=1):
        apply(state, run(on_member, member(code), at(HUB, offset), state))
    effects = run(on_pending, PendingMsg(item=role()), at(HUB, 3), state)
    apply(state, effects)
    copies = sent(effects)
    assert sorted(c.member or "" for c in copies) == ["demf", "usmf"]
    assert {c.row["dataAreaId"] for c in copies} == {"demf", "usmf"}
    assert all(isinstance(plan(c, MAPS), Emit) for c in copies)

    effects = run(on_member, member("frrt"), at(HUB, 4), state)  # a new legal entity
    apply(state, effects)
    [copy] = sent(effects)
    assert (copy.member, copy.row["dataAreaId"], copy.row["name"]) == ("frrt", "frrt", "Project Manager")

    assert sent(run(on_member, member("frrt", version=2), at(HUB, 5), state)) == []  # an update


def test_a_member_replayed_after_a_crash_sends_its_copies_again():
    """The changelog may hold the member while the copies were never sent: handling the same
    gate record again sends them again (a member seen before at another offset does not)."""
    state = tables()
    apply(state, run(on_pending, PendingMsg(item=role()), at(HUB, 1), state))
    apply(state, run(on_member, member("usmf"), at(HUB, 2), state))
    assert len(sent(run(on_member, member("usmf"), at(HUB, 2), state))) == 1
    assert sent(run(on_member, member("usmf"), at(HUB, 7), state)) == []


def test_a_role_delete_deletes_every_copy_and_an_older_change_arriving_late_is_stale():
    state = tables()
    apply(state, run(on_member, member("usmf"), at(HUB, 1), state))
    apply(state, run(on_pending, PendingMsg(item=role(version=5)), at(HUB, 2), state))
    effects = run(on_pending, PendingMsg(item=role(version=8, op="delete")), at(HUB, 3), state)
    apply(state, effects)
    [gone] = sent(effects)
    assert (gone.op, gone.member) == ("delete", "usmf")
    assert plan(gone, MAPS) == Need(f"key:resource_roles:{ROLE_ID}@usmf")  # the key it was written under

    late = run(on_pending, PendingMsg(item=role(version=6)), at(HUB, 4), state)
    assert sent(late) == [] and counted(late, metrics.DROPPED) == [("resource_roles", metrics.STALE)]
    assert sent(run(on_member, member("demf"), at(HUB, 5), state)) == []  # a deleted role is not copied


def test_a_deleted_member_gets_no_more_copies():
    state = tables()
    apply(state, run(on_member, member("usmf"), at(HUB, 1), state))
    apply(state, run(on_member, member("usmf", version=2, deleted=True), at(HUB, 2), state))
    assert sent(run(on_pending, PendingMsg(item=role()), at(HUB, 3), state)) == []


def test_a_company_change_is_routed_to_each_fan_out_map_as_a_member():
    event = ChangeEvent(op="u", after={"cdm_companyid": "c-1", "cdm_companycode": "frrt"},
                        source=Source(system="dataverse", table="cdm_companies", version="12",
                                      ts_ms=1), ts_ms=1)
    out = route_change(MAPS, "dataverse", "cdm_companies", "c-1", event, 0)
    members = [(k, m) for k, m in out.messages if isinstance(m, MemberMsg)]
    assert members == [(HUB, MemberMsg(map="resource_roles", member="frrt", version=12))]
    assert not [c for c in run(on_member, members[0][1], at(HUB), tables()) if isinstance(c, Count)]
