"""Single-row Web API behaviour: create, upsert, preconditions, lookups, errors."""

from __future__ import annotations

import httpx
import pytest

from tests.contract.dataverse.helpers import (
    CUSTOMER,
    ORG_DE,
    USMF,
    create,
    entity_id,
    project,
    task,
    unique,
)

pytestmark = pytest.mark.contract


def test_create_answers_204_with_entity_id_and_row_reads_back(dv_client: httpx.Client) -> None:
    number = unique("ACC")
    response = dv_client.post("accounts", json={
        "accountnumber": number, "name": "Tailspin",
        "msdyn_company@odata.bind": f"/cdm_companies({USMF})", "transactioncurrencyid": "USD"})
    assert response.status_code == 204
    row = dv_client.get(f"accounts({entity_id(response)})").json()
    assert row["accountnumber"] == number
    assert row["_msdyn_company_value"] == USMF
    assert row["@odata.etag"] == f'W/"{row["versionnumber"]}"'
    assert row["modifiedon"].endswith("Z")


def test_create_with_return_representation_answers_201_with_body(dv_client: httpx.Client) -> None:
    response = dv_client.post("bookableresourcecategories", json={"name": unique("Role")},
                              headers={"Prefer": "return=representation"})
    assert response.status_code == 201
    assert response.json()["bookableresourcecategoryid"] == entity_id(response)


def test_patch_by_alternate_key_creates_then_updates_the_same_row(dv_client: httpx.Client) -> None:
    number = unique("P")
    url = f"msdyn_projects(msdyn_projectnumber='{number}',_msdyn_owningcompany_value={USMF})"
    first = dv_client.patch(url, json={"msdyn_subject": "First"})
    second = dv_client.patch(url, json={"msdyn_subject": "Second"})
    assert first.status_code == second.status_code == 204
    assert entity_id(first) == entity_id(second)
    row = dv_client.get(url).json()
    assert row["msdyn_subject"] == "Second"
    assert row["msdyn_projectnumber"] == number and row["_msdyn_owningcompany_value"] == USMF
    found = dv_client.get("msdyn_projects", params={"$filter": f"msdyn_projectnumber eq '{number}'"})
    assert len(found.json()["value"]) == 1


def test_alternate_key_string_literal_escapes_quotes(dv_client: httpx.Client) -> None:
    number = unique("O'Brien")
    quoted = number.replace("'", "''")
    url = f"accounts(accountnumber='{quoted}',_msdyn_company_value={USMF})"
    assert dv_client.patch(url, json={"name": "Quoted"}).status_code == 204
    assert dv_client.get(url).json()["accountnumber"] == number


def test_wrong_key_names_are_refused_with_the_dataverse_message(dv_client: httpx.Client) -> None:
    response = dv_client.get("msdyn_projects(msdyn_projectnumber='P-1')")
    assert response.status_code == 400
    message = response.json()["error"]["message"]
    assert message.startswith("The key in the request URI is not valid for resource "
                              "'Microsoft.Dynamics.CRM.msdyn_project'")


def test_get_by_named_primary_key(dv_client: httpx.Client) -> None:
    pid = project(dv_client)
    assert dv_client.get(f"msdyn_projects(msdyn_projectid={pid})").json()["msdyn_projectid"] == pid


def test_if_match_star_updates_only(dv_client: httpx.Client) -> None:
    missing = dv_client.patch(f"accounts(accountnumber='{unique('NOPE')}',_msdyn_company_value={USMF})",
                              json={"name": "x"}, headers={"If-Match": "*"})
    assert missing.status_code == 404
    assert "error" in missing.json()
    pid = project(dv_client)
    ok = dv_client.patch(f"msdyn_projects({pid})", json={"msdyn_subject": "Renamed"},
                         headers={"If-Match": "*"})
    assert ok.status_code == 204


def test_if_none_match_star_creates_only(dv_client: httpx.Client) -> None:
    number = unique("P")
    url = f"msdyn_projects(msdyn_projectnumber='{number}',_msdyn_owningcompany_value={USMF})"
    assert dv_client.patch(url, json={"msdyn_subject": "New"},
                           headers={"If-None-Match": "*"}).status_code == 204
    again = dv_client.patch(url, json={"msdyn_subject": "Again"}, headers={"If-None-Match": "*"})
    assert again.status_code == 412
    assert dv_client.get(url).json()["msdyn_subject"] == "New"


def test_stale_etag_is_refused_with_412(dv_client: httpx.Client) -> None:
    pid = project(dv_client)
    old = dv_client.get(f"msdyn_projects({pid})").json()["@odata.etag"]
    assert dv_client.patch(f"msdyn_projects({pid})", json={"msdyn_subject": "v2"},
                           headers={"If-Match": old}).status_code == 204
    stale = dv_client.patch(f"msdyn_projects({pid})", json={"msdyn_subject": "v3"},
                            headers={"If-Match": old})
    assert stale.status_code == 412
    assert dv_client.delete(f"msdyn_projects({pid})", headers={"If-Match": old}).status_code == 412
    current = dv_client.get(f"msdyn_projects({pid})")
    assert current.json()["msdyn_subject"] == "v2"
    assert dv_client.get(f"msdyn_projects({pid})",
                         headers={"If-None-Match": current.headers["ETag"]}).status_code == 304


def test_delete_answers_204_then_404(dv_client: httpx.Client) -> None:
    pid = project(dv_client)
    assert dv_client.delete(f"msdyn_projects({pid})").status_code == 204
    assert dv_client.delete(f"msdyn_projects({pid})").status_code == 404
    gone = dv_client.get(f"msdyn_projects({pid})")
    assert gone.status_code == 404
    assert gone.json()["error"]["message"] == f"Entity 'msdyn_project' With Id = {pid} Does Not Exist"


def test_lookup_bind_by_alternate_key_reads_back_as_value(dv_client: httpx.Client) -> None:
    pid = project(dv_client)
    tid = create(dv_client, "msdyn_projecttasks", {
        "msdyn_project@odata.bind": f"/msdyn_projects({pid})", "msdyn_wbsid": "1",
        "msdyn_subject": "Design", "msdyn_isleaf": True})
    row = dv_client.get(f"msdyn_projecttasks({tid})").json()
    assert row["_msdyn_project_value"] == pid
    assert row["msdyn_isleaf"] is True
    acc = create(dv_client, "accounts", {
        "accountnumber": unique("A"), "msdyn_company@odata.bind": "/cdm_companies(cdm_companycode='usmf')"})
    assert dv_client.get(f"accounts({acc})").json()["_msdyn_company_value"] == USMF
    polymorphic = create(dv_client, "salesorders", {
        "ordernumber": unique("SO"), "customerid_account@odata.bind": f"/accounts({CUSTOMER})"})
    assert dv_client.get(f"salesorders({polymorphic})").json()["_customerid_value"] == CUSTOMER


def test_bind_to_missing_row_is_unable_to_lookup(dv_client: httpx.Client) -> None:
    missing = dv_client.post("accounts", json={
        "accountnumber": unique("A"), "msdyn_company@odata.bind": "/cdm_companies(cdm_companycode='zzzz')"})
    assert missing.status_code == 400
    assert missing.json()["error"]["message"] == "Unable to lookup cdm_companies with values {zzzz}."
    assert missing.json()["error"]["code"] == "0x80040265"


def test_unknown_column_is_refused(dv_client: httpx.Client) -> None:
    response = dv_client.post("accounts", json={"accountnumber": unique("A"), "colour": "red"})
    assert response.status_code == 400
    assert "'colour' does not exist on type 'Microsoft.Dynamics.CRM.account'" in \
        response.json()["error"]["message"]


def test_wrong_type_and_too_long_values_are_refused(dv_client: httpx.Client) -> None:
    assert dv_client.post("accounts", json={"statecode": "active"}).status_code == 400
    too_long = dv_client.post("cdm_companies", json={"cdm_companycode": "toolong"})
    assert too_long.status_code == 400
    assert "exceeded the maximum allowed length of '4'" in too_long.json()["error"]["message"]


def test_bad_json_unknown_set_and_wrong_method_answer_odata_errors(dv_client: httpx.Client) -> None:
    for response in (dv_client.post("accounts", content=b"{not json"),
                     dv_client.get("msdyn_unicorns"),
                     dv_client.delete("accounts"),
                     dv_client.put("accounts", json={})):
        assert response.status_code in (400, 404, 405)
        assert set(response.json()["error"]) == {"code", "message"}


def test_duplicate_alternate_key_on_create_is_refused(dv_client: httpx.Client) -> None:
    body = {"accountnumber": unique("DUP"), "msdyn_company@odata.bind": f"/cdm_companies({USMF})"}
    create(dv_client, "accounts", body)
    again = dv_client.post("accounts", json=body)
    assert again.status_code == 412
    assert again.json()["error"]["code"] == "0x80060892"


def test_company_cannot_change_after_save(dv_client: httpx.Client) -> None:
    pid = project(dv_client)
    response = dv_client.patch(f"msdyn_projects({pid})", json={
        "msdyn_owningcompany@odata.bind": "/cdm_companies(cdm_companycode='demf')"})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "0x80040265"


def test_contracting_unit_currency_must_match_company_currency(dv_client: httpx.Client) -> None:
    response = dv_client.post("msdyn_projects", json={
        "msdyn_projectnumber": unique("P"), "msdyn_owningcompany@odata.bind": f"/cdm_companies({USMF})",
        "msdyn_contractorganizationalunitid@odata.bind": f"/msdyn_organizationalunits({ORG_DE})"})
    assert response.status_code == 400
    assert "accounting currency" in response.json()["error"]["message"]


def test_required_lookup_is_enforced(dv_client: httpx.Client) -> None:
    response = dv_client.post("msdyn_projecttasks", json={"msdyn_wbsid": "1"})
    assert response.status_code == 400
    assert "msdyn_project" in response.json()["error"]["message"]


def test_summary_task_refuses_expenses(dv_client: httpx.Client) -> None:
    pid = project(dv_client)
    summary = task(dv_client, pid, "1", leaf=False)
    response = dv_client.post("msdyn_expenses", json={
        "msdyn_externalexpenseid": unique("EXP"), "msdyn_company@odata.bind": f"/cdm_companies({USMF})",
        "msdyn_project@odata.bind": f"/msdyn_projects({pid})",
        "msdyn_projecttask@odata.bind": f"/msdyn_projecttasks({summary})", "msdyn_amount": 10.0})
    assert response.status_code == 400
    assert "summary task" in response.json()["error"]["message"]


def test_deleting_a_project_deletes_its_tasks_and_unlinks_the_rest(dv_client: httpx.Client) -> None:
    pid = project(dv_client)
    parent = task(dv_client, pid, "1", leaf=False)
    child = create(dv_client, "msdyn_projecttasks", {
        "msdyn_project@odata.bind": f"/msdyn_projects({pid})", "msdyn_wbsid": "1.1",
        "msdyn_parenttask@odata.bind": f"/msdyn_projecttasks({parent})", "msdyn_isleaf": True})
    estimate = create(dv_client, "msdyn_estimatelines", {
        "msdyn_project@odata.bind": f"/msdyn_projects({pid})", "msdyn_amount": 5.0})
    assert dv_client.delete(f"msdyn_projects({pid})").status_code == 204
    assert dv_client.get(f"msdyn_projecttasks({parent})").status_code == 404
    assert dv_client.get(f"msdyn_projecttasks({child})").status_code == 404
    assert dv_client.get(f"msdyn_estimatelines({estimate})").json()["_msdyn_project_value"] is None


def test_a_project_with_actuals_cannot_be_deleted(dv_client: httpx.Client) -> None:
    pid = project(dv_client)
    create(dv_client, "msdyn_actuals", {"msdyn_project@odata.bind": f"/msdyn_projects({pid})",
                                        "msdyn_amount": 1.0, "msdyn_transactiontypecode": 192350000})
    response = dv_client.delete(f"msdyn_projects({pid})")
    assert response.status_code == 400 and "has actuals" in response.json()["error"]["message"]


def test_option_values_outside_the_option_set_are_refused(dv_client: httpx.Client) -> None:
    pid = project(dv_client)
    response = dv_client.patch(f"msdyn_projects({pid})", json={"statecode": 7})
    assert response.status_code == 400
    assert response.json()["error"]["message"].endswith("Accepted Values: 0,1")
    actual = dv_client.post("msdyn_actuals", json={"msdyn_transactiontypecode": 192350001})
    assert actual.status_code == 400


def test_strings_compare_case_insensitively_like_dataverse(dv_client: httpx.Client) -> None:
    number = unique("case").lower()
    create(dv_client, "accounts", {"accountnumber": number, "name": "Mixed Case",
                                   "msdyn_company@odata.bind": f"/cdm_companies({USMF})"})
    upper = f"accounts(accountnumber='{number.upper()}',_msdyn_company_value={USMF})"
    assert dv_client.get(upper).json()["accountnumber"] == number
    found = dv_client.get("accounts", params={"$filter": f"accountnumber eq '{number.upper()}'"})
    assert len(found.json()["value"]) == 1
    clash = dv_client.post("accounts", json={"accountnumber": number.upper(),
                                             "msdyn_company@odata.bind": f"/cdm_companies({USMF})"})
    assert clash.status_code == 412
