import pytest
from pydantic import ValidationError

from streams.maps import PROJECT_TASKS, Dependency, Endpoint, FieldMap, Lookup, TableMap

pytestmark = pytest.mark.unit

PARENT = Dependency(entity="ProjectTasks",
                    key=(("dataAreaId", "project", "dataAreaId"), ("ProjectId", "project", "ProjectId"),
                         ("Task", "parent", "msdyn_wbsid")),
                    same_tx_column="_msdyn_parenttask_value")


def tasks_map(*depends: Dependency) -> TableMap:
    return TableMap(
        name="tasks", source=Endpoint(system="dataverse", table="msdyn_projecttasks"),
        target=Endpoint(system="finance", table="ProjectTasks"),
        key=(FieldMap(target="Task", source="msdyn_wbsid"),), fields=(),
        lookups=(Lookup(name="project", column="_msdyn_project_value", ref="key", table="projects"),
                 Lookup(name="parent", column="_msdyn_parenttask_value", ref="row",
                        table="msdyn_projecttasks", fields=("msdyn_wbsid",))),
        depends=depends)


def test_a_dependency_key_may_draw_on_several_lookups_each_named_once():
    assert PARENT.lookups == ("project", "parent")
    assert tasks_map(PARENT).depends == (PARENT,)


def test_a_dependency_on_an_unknown_lookup_is_refused():
    wrong = PARENT.model_copy(update={"key": (("Task", "parnet", "msdyn_wbsid"),)})
    with pytest.raises(ValidationError, match="unknown lookups \\['parnet'\\]"):
        tasks_map(wrong)


def test_a_dependency_needs_a_key():
    with pytest.raises(ValidationError):
        Dependency(entity="ProjectTasks", key=())


def test_project_tasks_wait_for_their_project_and_their_parent_task():
    assert [(d.entity, d.lookups, d.same_tx_column) for d in PROJECT_TASKS.depends] == [
        ("ProjectsV2", ("project",), "_msdyn_project_value"),
        ("ProjectTasks", ("project", "parent"), "_msdyn_parenttask_value")]


def test_what_a_map_derives_is_worked_out_again_for_a_copy_with_other_fields():
    """Derived values are cached on the frozen model; pydantic's copy carries the instance's
    dict along, so a copy with an update must not keep the original's."""
    tasks = tasks_map(PARENT)
    assert [out.name for out in tasks.forward_flow[1]] == ["Task"]
    wider = tasks.model_copy(update={"fields": (FieldMap(target="Name", source="msdyn_subject"),)})
    assert [out.name for out in wider.forward_flow[1]] == ["Task", "Name"]
    assert tasks.lookups[1].after == ()
    chained = tasks.lookups[1].model_copy(update={"via": "project"})
    assert chained.after == ("project",)
    assert tasks.model_copy().forward_flow == tasks.forward_flow  # no update: the same derivation
