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
