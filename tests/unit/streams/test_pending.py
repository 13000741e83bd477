import pytest

from streams.maps import default_registry, key_fact
from streams.pending import (
    Drop,
    Emit,
    Group,
    Need,
    Pair,
    Pending,
    change_set_peers,
    plan,
    record_ref,
    split_record_ref,
    to_command,
)
from streams.transform import TransformError
from tests.unit.streams import rows
from topics import CommandSource

pytestmark = pytest.mark.unit

MAPS = default_registry()
PROJECT_KEY = {"dataAreaId": "usmf", "ProjectId": "PRJ-1"}


def pending(map_name: str, row: dict, *, table: str, system: str = "dataverse", txid=None,
            tx_total=None, **extra) -> Pending:
    source = CommandSource(system=system, table=table, id=str(row.get("msdyn_projecttaskid") or
                                                                row.get("msdyn_projectid") or "x"),
                           version=3, ts_ms=1_000, txid=txid)
    return Pending(id=f"{map_name}:{source.id}:3", map=map_name, op="upsert", row=row,
                   source=source, tx_total=tx_total, born_ms=0, **extra)


def test_project_walks_its_lookups_then_emits_and_publishes_its_key():
    item = pending("projects", rows.project(), table="msdyn_projects")
    assert plan(item, MAPS) == Need(rows.COMPANY_FACT)
    item = item.with_fact(rows.COMPANY_FACT, {"cdm_companycode": "usmf"})
    assert plan(item, MAPS) == Need(rows.ACCOUNT_FACT)
    item = item.with_fact(rows.ACCOUNT_FACT, {"accountnumber": "US-001"})
    step = plan(item, MAPS)
    assert isinstance(step, Emit)
    assert step.key == "present:ProjectsV2(ProjectId='PRJ-1',dataAreaId='usmf')"
    assert step.publish == ((rows.PROJECT_KEY_FACT, PROJECT_KEY),)
    command = to_command(item, step.mapped, MAPS)
    assert command.command_id == f"projects:{rows.PROJECT}:3"
    assert command.record_key == "ProjectsV2(ProjectId='PRJ-1',dataAreaId='usmf')"
    assert command.target == "finance" and command.tx_size is None and not command.update_only


def test_task_waits_for_its_project_to_be_present_in_finance():
    item = pending("project_tasks", rows.task(), table="msdyn_projecttasks")
    assert plan(item, MAPS) == Need(rows.PROJECT_KEY_FACT)
    item = item.with_fact(rows.PROJECT_KEY_FACT, PROJECT_KEY)
    assert plan(item, MAPS) == Need(rows.PROJECT_PRESENT)
    item = item.with_fact(rows.PROJECT_PRESENT, {"target_id": "5637144576"})
    assert isinstance(plan(item, MAPS), Emit)


def test_task_in_the_same_transaction_as_its_project_does_not_wait():
    item = pending("project_tasks", rows.task(), table="msdyn_projecttasks", txid="tx1",
                   tx_total=2, tx_order=2)
    assert plan(item, MAPS) == Group("tx:dataverse:tx1")
    item = item.model_copy(update={"tx_members": (rows.PROJECT, "t-guid-1")})
    item = item.with_fact(rows.PROJECT_KEY_FACT, PROJECT_KEY)
    step = plan(item, MAPS)
    assert isinstance(step, Emit)
    command = to_command(item, step.mapped, MAPS)
    assert (command.tx_size, command.tx_order) == (2, 2)  # the change set writes it second


def test_a_released_member_knows_its_change_set_by_size_and_its_own_references():
    """Released as it is now: no membership list, the project found among the task's peers."""
    item = pending("project_tasks", rows.task(), table="msdyn_projecttasks", txid="tx1",
                   tx_total=2, tx_order=2)
    assert change_set_peers(item, {rows.PROJECT, "t-guid-1", "other"}, MAPS) == (rows.PROJECT,)
    assert change_set_peers(item, {"t-guid-1"}, MAPS) == ()
    released = item.model_copy(update={"tx_size": 2, "tx_counted": True, "tx_peers": (rows.PROJECT,)})
    released = released.with_fact(rows.PROJECT_KEY_FACT, PROJECT_KEY)
    step = plan(released, MAPS)
    assert isinstance(step, Emit)  # not grouped again, and not waiting for its project
    command = to_command(released, step.mapped, MAPS)
    assert (command.tx_size, command.tx_order) == (2, 2)
    alone = released.model_copy(update={"tx_peers": ()})
    assert plan(alone, MAPS) == Need(rows.PROJECT_PRESENT)  # its project is not in the change set


def test_single_change_transaction_is_not_grouped():
    item = pending("legal_entities", rows.legal_entity(), table="LegalEntities", system="finance",
                   txid="t", tx_total=1)
    assert isinstance(plan(item, MAPS), Emit)


def test_two_way_map_pairs_before_emitting():
    item = pending("customers", rows.customer(), table="CustomersV3", system="finance")
    item = item.with_fact(rows.COMPANY_PRESENT, {"target_id": rows.COMPANY})
    step = plan(item, MAPS)
    assert isinstance(step, Pair)
    assert step.key == f"pair:customers:accounts(_msdyn_company_value='{rows.COMPANY}',accountnumber='US-001')"
    assert step.side == "finance" and step.values == {"name": "Adatum"}
    emit = plan(item.model_copy(update={"paired": True, "dropped": ("name",)}), MAPS)
    assert isinstance(emit, Emit) and "name" not in emit.mapped.fields


def test_reverse_change_pairs_on_the_same_key_and_drops_when_it_loses():
    row = rows.account_in_dataverse(name="Adatum Corp")
    item = Pending(id="customers:a:2", map="customers", reverse=True, op="upsert", row=row,
                   source=CommandSource(system="dataverse", table="accounts", id=rows.ACCOUNT,
                                        version=2, ts_ms=1),
                   born_ms=0).with_fact(rows.COMPANY_FACT, {"cdm_companycode": "usmf"})
    step = plan(item, MAPS)
    assert isinstance(step, Pair)
    assert step.key.endswith("accountnumber='US-001')") and step.side == "dataverse"
    won = plan(item.model_copy(update={"paired": True}), MAPS)
    assert isinstance(won, Emit)
    assert won.mapped.fields == {"dataAreaId": "usmf", "CustomerAccount": "US-001",
                                 "Name": "Adatum Corp"}
    assert won.publish == ()
    assert to_command(item, won.mapped, MAPS).update_only  # an edit flowing back never creates
    lost = plan(item.model_copy(update={"paired": True, "dropped": ("name",)}), MAPS)
    assert isinstance(lost, Drop)


def test_filtered_rows_drop():
    item = pending("projects", rows.project(msdyn_projectnumber=""), table="msdyn_projects")
    assert isinstance(plan(item, MAPS), Drop)


TASK_KEY = {"dataAreaId": "usmf", "ProjectId": "PRJ-1", "Task": "1.2"}
TASK_KEY_FACT = key_fact("project_tasks", "t-guid-1")


def task_delete(row: dict, version: int = 3) -> Pending:
    source = CommandSource(system="dataverse", table="msdyn_projecttasks", id="t-guid-1",
                           version=version, ts_ms=1_000)
    return Pending(id=f"project_tasks:t-guid-1:{version}", map="project_tasks", op="delete",
                   row=row, source=source, born_ms=0)


@pytest.mark.parametrize("before", [{}, rows.task(), rows.task(msdyn_wbsid="", _msdyn_project_value=None)],
                         ids=["no before image", "full before image", "image the filter rejects"])
def test_delete_deletes_the_key_the_record_was_written_under(before):
    item = task_delete(before)
    # Neither the row filter, nor lookups, nor dependencies: only the key written for the record.
    assert plan(item, MAPS) == Need(TASK_KEY_FACT)
    step = plan(item.with_fact(TASK_KEY_FACT, TASK_KEY), MAPS)
    assert isinstance(step, Emit) and step.publish == ()
    assert step.key == "present:ProjectTasks(ProjectId='PRJ-1',Task='1.2',dataAreaId='usmf')"
    command = to_command(item, step.mapped, MAPS)
    assert command.op == "delete" and command.fields == {} and command.key == TASK_KEY
    assert command.entity == "ProjectTasks"


@pytest.mark.parametrize("fact", [{}, {"dataAreaId": "usmf", "Task": None}, {"Task": ["1"]}])
def test_delete_whose_key_fact_names_no_key_is_a_transform_error(fact):
    with pytest.raises(TransformError, match="holds no target key"):
        plan(task_delete({}).with_fact(TASK_KEY_FACT, fact), MAPS)


def test_an_upsert_publishes_its_key_for_a_later_delete():
    item = pending("project_tasks", rows.task(), table="msdyn_projecttasks")
    item = item.with_fact(rows.PROJECT_KEY_FACT, PROJECT_KEY)
    step = plan(item.with_fact(rows.PROJECT_PRESENT, {"target_id": "5637144576"}), MAPS)
    assert isinstance(step, Emit) and step.publish == ((TASK_KEY_FACT, TASK_KEY),)


def child_task(**extra) -> Pending:
    return pending("project_tasks", rows.task(_msdyn_parenttask_value=rows.PARENT_TASK),
                   table="msdyn_projecttasks", **extra)


def test_child_task_waits_for_its_parent_to_be_present_in_finance():
    item = child_task()
    assert plan(item, MAPS) == Need(rows.PROJECT_KEY_FACT)
    item = item.with_fact(rows.PROJECT_KEY_FACT, PROJECT_KEY)
    assert plan(item, MAPS) == Need(rows.PARENT_ROW_FACT)
    item = item.with_fact(rows.PARENT_ROW_FACT, {"msdyn_wbsid": "1"})
    assert plan(item, MAPS) == Need(rows.PROJECT_PRESENT)
    item = item.with_fact(rows.PROJECT_PRESENT, {"target_id": "5637144576"})
    # The parent's Finance key: company and project from the project, task from the parent row.
    assert plan(item, MAPS) == Need(
        "present:ProjectTasks(ProjectId='PRJ-1',Task='1',dataAreaId='usmf')")
    assert rows.PARENT_PRESENT == "present:ProjectTasks(ProjectId='PRJ-1',Task='1',dataAreaId='usmf')"
    item = item.with_fact(rows.PARENT_PRESENT, {"target_id": "5637144577"})
    step = plan(item, MAPS)
    assert isinstance(step, Emit)
    assert step.key == "present:ProjectTasks(ProjectId='PRJ-1',Task='1.2',dataAreaId='usmf')"
    assert step.mapped.fields["ParentTask"] == "1"


def test_task_without_a_parent_waits_for_nothing_but_its_project():
    for parent in (None, ""):
        item = pending("project_tasks", rows.task(_msdyn_parenttask_value=parent),
                       table="msdyn_projecttasks")
        item = item.with_fact(rows.PROJECT_KEY_FACT, PROJECT_KEY)
        assert plan(item, MAPS) == Need(rows.PROJECT_PRESENT)
        item = item.with_fact(rows.PROJECT_PRESENT, {"target_id": "5637144576"})
        step = plan(item, MAPS)
        assert isinstance(step, Emit) and step.mapped.fields["ParentTask"] is None


def test_child_task_in_the_same_transaction_as_its_parent_does_not_wait_for_it():
    item = child_task(txid="tx2", tx_total=2)
    assert plan(item, MAPS) == Group("tx:dataverse:tx2")
    item = item.model_copy(update={"tx_members": (rows.PARENT_TASK, "t-guid-1")})
    item = item.with_fact(rows.PROJECT_KEY_FACT, PROJECT_KEY)
    item = item.with_fact(rows.PARENT_ROW_FACT, {"msdyn_wbsid": "1"})
    # Its project is in another transaction: that wait holds; the parent's does not.
    assert plan(item, MAPS) == Need(rows.PROJECT_PRESENT)
    item = item.with_fact(rows.PROJECT_PRESENT, {"target_id": "5637144576"})
    step = plan(item, MAPS)
    assert isinstance(step, Emit) and step.mapped.fields["ParentTask"] == "1"


def test_child_task_in_the_same_transaction_as_its_project_and_parent_waits_for_neither():
    item = child_task(txid="tx3", tx_total=3)
    item = item.model_copy(update={"tx_members": (rows.PROJECT, rows.PARENT_TASK, "t-guid-1")})
    item = item.with_fact(rows.PROJECT_KEY_FACT, PROJECT_KEY)
    item = item.with_fact(rows.PARENT_ROW_FACT, {"msdyn_wbsid": "1"})
    assert isinstance(plan(item, MAPS), Emit)


def test_child_task_delete_does_not_wait_for_its_parent():
    item = child_task().model_copy(update={"op": "delete"})
    step = plan(item.with_fact(TASK_KEY_FACT, TASK_KEY), MAPS)
    assert isinstance(step, Emit) and to_command(item, step.mapped, MAPS).op == "delete"


@pytest.mark.parametrize(("bad", "field"), [({"statecode": [0]}, "ProjectStage"),
                                            ({"msdyn_projectnumber": {"a": 1}}, "ProjectId")])
def test_a_wrong_value_type_is_refused_once_the_lookups_are_known(bad, field):
    item = pending("projects", rows.project(**bad), table="msdyn_projects")
    assert plan(item, MAPS) == Need(rows.COMPANY_FACT)  # lookups first
    item = item.with_fact(rows.COMPANY_FACT, {"cdm_companycode": "usmf"})
    item = item.with_fact(rows.ACCOUNT_FACT, {"accountnumber": "US-001"})
    with pytest.raises(TransformError, match=f"field '{field}' must be a scalar"):
        plan(item, MAPS)


def test_a_record_ref_splits_back_into_id_and_member_only_for_a_fan_out() -> None:
    assert split_record_ref(record_ref("r-1", "usmf"), fanned=True) == ("r-1", "usmf")
    assert split_record_ref(record_ref("a@b", "usmf"), fanned=True) == ("a@b", "usmf")
    assert split_record_ref("a@b", fanned=False) == ("a@b", None)  # an id with an @ of its own
    assert split_record_ref("r-1", fanned=True) == ("r-1", None)
