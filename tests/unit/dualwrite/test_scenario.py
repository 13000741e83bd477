"""The scenario's random activity builds a consistent two-level WBS, and checks it honestly."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest

from dualwrite.scenario import Scenario
from tests.unit.dualwrite.fakes import Response

pytestmark = pytest.mark.unit


class FakeDataverse:
    """Just enough of the Web API for the scenario; refuses what Dataverse would not do."""

    def __init__(self) -> None:
        self.tasks: dict[str, dict[str, Any]] = {}  # id -> {"project", "wbs", "parent"}

    @staticmethod
    def _bound(body: dict[str, Any], name: str) -> str | None:
        bind = body.get(f"{name}@odata.bind")
        return None if bind is None else re.fullmatch(r"/\w+\((.+)\)", bind).group(1)  # type: ignore[union-attr]

    def request(self, method: str, url: str, json: dict[str, Any] | None = None,
                **_: Any) -> Response:
        if method == "POST" and url == "msdyn_projects":
            return Response(201, {"msdyn_projectid": str(uuid.uuid4())})
        if method == "POST" and url == "msdyn_projecttasks":
            assert json is not None
            parent = self._bound(json, "msdyn_parenttask")
            project = self._bound(json, "msdyn_project")
            assert parent is None or self.tasks[parent]["project"] == project
            task_id = str(uuid.uuid4())
            self.tasks[task_id] = {"project": project, "wbs": json["msdyn_wbsid"], "parent": parent}
            return Response(204, headers={"OData-EntityId": f"http://dv/msdyn_projecttasks({task_id})"})
        if method == "DELETE" and url.startswith("msdyn_projecttasks("):
            task_id = url[len("msdyn_projecttasks("):-1]
            assert not [t for t in self.tasks.values() if t["parent"] == task_id], "parent deleted"
            del self.tasks[task_id]
            return Response(204)
        if method == "PATCH":
            return Response(204)
        raise AssertionError(f"unexpected {method} {url}")

    def get_all(self, url: str, params: dict[str, str] | None = None) -> list[dict[str, Any]]:
        return {"cdm_companies": [{"cdm_companyid": "c1"}], "accounts": [{"accountid": "a1", "accountnumber": "US-001"}]}[url]


class FakeFinance:
    def __init__(self) -> None:
        self.tasks: list[dict[str, Any]] = []

    def request(self, method: str, url: str, **_: Any) -> Response:
        assert (method, url) == ("POST", "CustomersV3")
        return Response(201)

    def get_all(self, url: str, params: dict[str, str] | None = None) -> list[dict[str, Any]]:
        return self.tasks if url == "ProjectTasks" else []


def test_random_activity_builds_children_under_existing_tasks_and_deletes_only_leaves():
    dv = FakeDataverse()
    scenario = Scenario(dv, FakeFinance(), seed=3)  # type: ignore[arg-type]
    did = [scenario.step() for _ in range(300)]
    assert any(" under " in d for d in did) and any(d.startswith("deleted") for d in did)

    wbs_of = {task_id: t["wbs"] for task_id, t in dv.tasks.items()}
    number_of = {project_id: number for number, project_id in scenario._projects.items()}
    held = {(number_of[t["project"]], t["wbs"]): None if t["parent"] is None else wbs_of[t["parent"]]
            for t in dv.tasks.values()}
    expected = {(p, wbs): fields["ParentTask"]
                for (_c, p, wbs), fields in scenario.expected.finance_tasks.items()}
    assert expected == held
    children = {wbs: parent for (_p, wbs), parent in expected.items() if parent is not None}
    assert children
    assert all(re.fullmatch(rf"{re.escape(parent)}\.\d+", wbs) for wbs, parent in children.items())
    assert all("." not in parent for parent in children.values())  # two levels


def test_progress_compares_the_parent_task():
    fo = FakeFinance()
    scenario = Scenario(FakeDataverse(), fo)  # type: ignore[arg-type]
    project = scenario.create_project()
    scenario.create_task(project, "1")
    scenario.create_task(project, "1.1", parent="1")
    assert scenario.expected.finance_tasks[("usmf", project, "1.1")] == {
        "Name": "Work package 1.1", "ParentTask": "1"}

    def row(wbs: str, parent: str | None) -> dict[str, Any]:
        return {"dataAreaId": "usmf", "ProjectId": project, "Task": wbs, "ParentTask": parent,
                "Name": f"Work package {wbs}"}

    fo.tasks = [row("1", None), row("1.1", None)]
    progress = scenario.progress()
    assert progress.tasks == (1, 2)
    assert progress.mismatches == [f"task ('usmf', '{project}', '1.1'): {{'ParentTask': ('1', None)}}"]
    fo.tasks = [row("1", None), row("1.1", "1")]
    assert scenario.progress().tasks == (2, 2)
