"""Finance emulator: entity URLs, company scoping, query options, paging and writes."""

from __future__ import annotations

import httpx
import pytest

from tests.contract.finance.helpers import created, project, uid

pytestmark = pytest.mark.contract


def test_key_url_with_all_key_fields_returns_the_row_and_its_etag(fo: httpx.Client) -> None:
    resp = fo.get("/CustomersV3(dataAreaId='usmf',CustomerAccount='US-003')")
    assert resp.status_code == 200
    body = resp.json()
    assert body["Name"] == "Forest Wholesales"
    assert body["@odata.etag"] == f'W/"{body["RecVersion"]}"'
    assert resp.headers["ETag"] == body["@odata.etag"]
    assert body["RecId"] >= 5637144576


def test_key_url_missing_a_key_field_is_400(fo: httpx.Client) -> None:
    resp = fo.get("/CustomersV3(CustomerAccount='US-003')")
    assert resp.status_code == 400
    assert resp.json()["error"]["code"] == "BadKey"
    assert "dataAreaId" in resp.json()["error"]["message"]


def test_unknown_row_is_404_and_unknown_collection_is_404(fo: httpx.Client) -> None:
    assert fo.get("/CustomersV3(dataAreaId='usmf',CustomerAccount='NOPE')").status_code == 404
    assert fo.get("/NoSuchEntities").json()["error"]["code"] == "NotFound"


def test_collection_returns_only_the_default_company(fo: httpx.Client) -> None:
    rows = fo.get("/CustomersV3").json()["value"]
    assert rows and {r["dataAreaId"] for r in rows} == {"usmf"}


def test_cross_company_returns_every_company_and_filters_one(fo: httpx.Client) -> None:
    every = fo.get("/CustomersV3", params={"cross-company": "true"}).json()["value"]
    assert {r["dataAreaId"] for r in every} == {"usmf", "demf"}
    demf = fo.get("/CustomersV3", params={"cross-company": "true",
                                          "$filter": "dataAreaId eq 'demf'"}).json()["value"]
    assert [r["CustomerAccount"] for r in demf] == ["DE-001", "DE-002", "DE-003"]


def test_keyed_url_in_another_company_needs_cross_company(fo: httpx.Client) -> None:
    url = "/CustomersV3(dataAreaId='demf',CustomerAccount='DE-002')"
    assert fo.get(url).status_code == 404
    assert fo.get(url, params={"cross-company": "true"}).json()["Name"] == "Fabrikam Deutschland"


def test_filter_comparisons_and_logic(fo: httpx.Client) -> None:
    flt = ("(CustomerGroupId eq '10' or CustomerGroupId eq '80') and not "
           "(CustomerAccount eq 'US-004') and CustomerAccount ge 'US-002'")
    rows = fo.get("/CustomersV3", params={"$filter": flt}).json()["value"]
    assert [r["CustomerAccount"] for r in rows] == ["US-003", "US-005"]


def test_filter_wildcard_inside_eq_string(fo: httpx.Client) -> None:
    rows = fo.get("/CustomersV3", params={"$filter": "Name eq 'Contoso Retail*'"}).json()["value"]
    assert [r["CustomerAccount"] for r in rows] == ["US-001", "US-002"]


def test_filter_on_enum_literal(fo: httpx.Client) -> None:
    flt = "TransactionType eq Microsoft.Dynamics.DataEntities.ProjTransType'Expense'"
    rows = fo.get("/ProjectCategories", params={"$filter": flt}).json()["value"]
    assert sorted(r["CategoryId"] for r in rows) == ["HOTEL", "TRAVEL"]


def test_bad_filter_is_an_odata_400(fo: httpx.Client) -> None:
    resp = fo.get("/CustomersV3", params={"$filter": "NoSuchField eq 1"})
    assert resp.status_code == 400
    assert set(resp.json()["error"]) == {"code", "message"}


def test_select_returns_only_the_selected_fields(fo: httpx.Client) -> None:
    rows = fo.get("/CustomersV3", params={"$select": "CustomerAccount,Name"}).json()["value"]
    assert set(rows[0]) == {"@odata.etag", "CustomerAccount", "Name"}


def test_orderby_top_and_skip(fo: httpx.Client) -> None:
    rows = fo.get("/CustomersV3", params={"$orderby": "Name desc", "$top": "2",
                                          "$skip": "1"}).json()["value"]
    assert [r["Name"] for r in rows] == ["Contoso Retail San Diego", "Contoso Retail Los Angeles"]


def test_count_option_and_count_segment(fo: httpx.Client) -> None:
    body = fo.get("/CustomersV3", params={"$count": "true", "$top": "1"}).json()
    assert body["@odata.count"] == 5 and len(body["value"]) == 1
    assert fo.get("/CustomersV3/$count", params={"cross-company": "true"}).text == "8"


def test_server_paging_follows_next_links(fo: httpx.Client) -> None:
    seen: list[str] = []
    url: str | None = "/CustomersV3?cross-company=true"
    pages = 0
    while url:
        resp = fo.get(url, headers={"Prefer": "odata.maxpagesize=3"})
        assert resp.headers["Preference-Applied"] == "odata.maxpagesize=3"
        body = resp.json()
        seen += [r["CustomerAccount"] for r in body["value"]]
        url = body.get("@odata.nextLink")
        pages += 1
    assert pages == 3 and len(seen) == 8 == len(set(seen))


def test_create_returns_201_body_and_location(fo: httpx.Client) -> None:
    account = uid("US")
    resp = fo.post("/CustomersV3", json={"CustomerAccount": account, "Name": "New customer",
                                         "CustomerGroupId": "10", "SalesCurrencyCode": "USD"})
    body = created(resp)
    assert body["dataAreaId"] == "usmf"  # defaulted to the caller's company
    assert resp.headers["Location"].endswith(
        f"/data/CustomersV3(dataAreaId='usmf',CustomerAccount='{account}')")
    assert fo.get(resp.headers["Location"]).json()["Name"] == "New customer"


def test_duplicate_create_is_refused(fo: httpx.Client) -> None:
    resp = fo.post("/CustomersV3", json={"CustomerAccount": "US-001", "Name": "Dup"})
    assert resp.status_code == 400
    assert "already exists" in resp.json()["error"]["message"]


def test_patch_updates_and_bumps_the_etag(fo: httpx.Client) -> None:
    proj = project(fo)
    url = f"/ProjectsV2(dataAreaId='usmf',ProjectId='{proj['ProjectId']}')"
    resp = fo.patch(url, json={"ProjectName": "Renamed", "SalesTaxGroupId": "AV"})
    assert resp.status_code == 204
    after = fo.get(url).json()
    assert after["ProjectName"] == "Renamed" and after["ProjectContractId"] == proj["ProjectContractId"]
    assert after["RecVersion"] > proj["RecVersion"]


def test_patch_of_a_missing_row_is_404_not_an_upsert(fo: httpx.Client) -> None:
    resp = fo.patch("/CustomersV3(dataAreaId='usmf',CustomerAccount='NOT-THERE')",
                    json={"Name": "x"})
    assert resp.status_code == 404
    assert fo.get("/CustomersV3(dataAreaId='usmf',CustomerAccount='NOT-THERE')").status_code == 404


def test_put_replaces_the_row(fo: httpx.Client) -> None:
    proj = project(fo, SalesTaxGroupId="AV")
    url = f"/ProjectsV2(dataAreaId='usmf',ProjectId='{proj['ProjectId']}')"
    resp = fo.put(url, json={"ProjectName": "Only name"},
                  headers={"Prefer": "return=representation"})
    assert resp.status_code == 200
    assert resp.json()["SalesTaxGroupId"] is None and resp.json()["ProjectStage"] == "InProcess"


def test_delete_removes_the_row(fo: httpx.Client) -> None:
    account = uid("US")
    created(fo.post("/CustomersV3", json={"CustomerAccount": account, "Name": "Temp"}))
    url = f"/CustomersV3(dataAreaId='usmf',CustomerAccount='{account}')"
    assert fo.delete(url).status_code == 204
    assert fo.get(url).status_code == 404


def test_stale_if_match_is_412_and_current_one_succeeds(fo: httpx.Client) -> None:
    proj = project(fo)
    url = f"/ProjectsV2(dataAreaId='usmf',ProjectId='{proj['ProjectId']}')"
    first = proj["@odata.etag"]
    assert fo.patch(url, json={"ProjectName": "v2"}, headers={"If-Match": first}).status_code == 204
    stale = fo.patch(url, json={"ProjectName": "v3"}, headers={"If-Match": first})
    assert stale.status_code == 412
    assert stale.json()["error"]["code"] == "PreconditionFailed"
    current = fo.get(url).json()["@odata.etag"]
    assert fo.delete(url, headers={"If-Match": current}).status_code == 204


def test_missing_reference_is_an_fo_write_failure(fo: httpx.Client) -> None:
    resp = fo.post("/ProjectsV2", json={"ProjectId": uid("P"), "ProjectName": "Orphan",
                                        "ProjectContractId": "NO-SUCH-CONTRACT"})
    assert resp.status_code == 400
    error = resp.json()["error"]
    assert error["code"] == "WriteFailed"
    assert error["message"].startswith("Write failed for table row of type 'ProjProjectV2Entity'")
    assert "NO-SUCH-CONTRACT" in error["message"]


def test_referenced_row_cannot_be_deleted(fo: httpx.Client) -> None:
    proj = project(fo)
    resp = fo.delete(f"/ProjectContractHeaders(dataAreaId='usmf',"
                     f"ProjectContractId='{proj['ProjectContractId']}')")
    assert resp.status_code == 400 and "referenced by ProjectsV2" in resp.text


def test_invalid_enum_and_unknown_property_are_400(fo: httpx.Client) -> None:
    bad_enum = fo.post("/ProjectsV2", json={"ProjectId": uid("P"), "ProjectStage": "Closed"})
    assert bad_enum.status_code == 400 and bad_enum.json()["error"]["code"] == "InvalidValue"
    unknown = fo.post("/ProjectsV2", json={"ProjectId": uid("P"), "Colour": "red"})
    assert unknown.status_code == 400 and "Colour" in unknown.json()["error"]["message"]


def test_malformed_json_is_an_odata_error_not_a_stack_trace(fo: httpx.Client) -> None:
    resp = fo.post("/CustomersV3", content=b"{not json",
                   headers={"Content-Type": "application/json"})
    assert resp.status_code == 400
    assert "Traceback" not in resp.text and resp.json()["error"]["code"] == "BadRequest"


def test_read_only_entities_refuse_writes(fo: httpx.Client) -> None:
    resp = fo.post("/IntegrationJournals", json={"JournalId": "X"})
    assert resp.status_code == 400 and resp.json()["error"]["code"] == "WriteFailed"


def test_dates_are_returned_as_fo_date_time_offsets(fo: httpx.Client) -> None:
    proj = project(fo, ProjectedEndDate="2026-12-31")
    assert proj["ProjectedStartDate"] == "2026-01-01T12:00:00Z"
    assert proj["ProjectedEndDate"] == "2026-12-31T12:00:00Z"


def test_service_document_and_metadata_list_the_entities(fo: httpx.Client) -> None:
    names = {e["name"] for e in fo.get("/").json()["value"]}
    assert {"ProjectsV2", "ActualsStaging", "InvoiceProposals"} <= names
    assert '<EntitySet Name="ProjectsV2"' in fo.get("/$metadata").text


def test_unsupported_query_options_are_refused_not_ignored(fo: httpx.Client) -> None:
    resp = fo.get("/ProjectsV2", params={"$expand": "ProjectTasks"})
    assert resp.status_code == 400 and "$expand" in resp.json()["error"]["message"]


def test_data_area_id_in_keys_is_case_insensitive(fo: httpx.Client) -> None:
    resp = fo.get("/CustomersV3(dataAreaId='USMF',CustomerAccount='US-001')")
    assert resp.status_code == 200 and resp.json()["dataAreaId"] == "usmf"


def test_date_key_fields_accept_a_plain_date(fo: httpx.Client) -> None:
    resp = fo.get("/ExchangeRates(RateType='Default',FromCurrency='EUR',ToCurrency='USD',"
                  "ValidFrom=2020-01-01)")
    assert resp.status_code == 200 and resp.json()["Rate"] == 1.085


def test_legal_entities_are_global_not_company_striped(fo: httpx.Client) -> None:
    rows = fo.get("/LegalEntities").json()["value"]
    assert {(r["dataAreaId"], r["AccountingCurrency"]) for r in rows} >= {("usmf", "USD"),
                                                                          ("demf", "EUR")}
    assert fo.get("/LegalEntities('DEMF')").json()["Name"] == "Contoso Entertainment System Germany"


def test_strings_compare_case_insensitively_like_fo(fo: httpx.Client) -> None:
    assert fo.get("/CustomersV3(dataAreaId='usmf',CustomerAccount='us-003')").json()[
        "CustomerAccount"] == "US-003"
    rows = fo.get("/CustomersV3", params={"$filter": "Name eq 'forest wholesales'"}).json()
    assert [r["CustomerAccount"] for r in rows["value"]] == ["US-003"]
    dup = fo.post("/CustomersV3", json={"CustomerAccount": "us-001", "Name": "Dup"})
    assert dup.status_code == 400 and "already exists" in dup.text
