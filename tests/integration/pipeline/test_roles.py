"""Project resource roles for all companies, through the real pipeline: a global Dataverse role
becomes one Finance role per legal entity, a new legal entity gets every role, and a role's
delete removes it from every company (`streams.maps.roles`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.pipeline import read_topic, running_stack, wait_for
from topics import read_headers

pytestmark = pytest.mark.integration

ARRIVE = 180.0


def test_a_role_is_in_every_legal_entity_and_a_new_legal_entity_gets_every_role(tmp_path: Path) -> None:
    with running_stack(tmp_path) as stack:
        dv, fo = stack.dataverse(), stack.finance()

        def roles_in_finance(name: str) -> dict[str, dict[str, object]]:
            rows = fo.get_all("ResourceRoles", {"cross-company": "true", "$filter": f"RoleId eq '{name}'"})
            return {str(r["dataAreaId"]): r for r in rows}

        companies = {str(r["cdm_companycode"]) for r in dv.get_all("cdm_companies")}
        assert len(companies) >= 2
        resp = dv.request("POST", "bookableresourcecategories", headers={"Prefer": "return=representation"},
                          json={"name": "Data Engineer", "description": "Builds pipelines"})
        assert resp.status_code < 300, resp.text
        role_id = str(resp.json()["bookableresourcecategoryid"])

        copies = wait_for(lambda: (c := roles_in_finance("Data Engineer")).keys() == companies and c,
                          ARRIVE, "the role in every legal entity")
        assert {str(r["SourceDataId"]) for r in copies.values()} == {role_id}
        # The roles already in Dataverse were synced as well (the map's initial sync).
        dv_roles = {str(r["name"]) for r in dv.get_all("bookableresourcecategories")}

        resp = fo.request("POST", "LegalEntities", json={"dataAreaId": "frrt", "Name": "Contoso France",
                                                         "AccountingCurrency": "EUR"})
        assert resp.status_code < 300, resp.text
        wait_for(lambda: dv.get_all("cdm_companies", {"$filter": "cdm_companycode eq 'frrt'"}), ARRIVE,
                 "the new legal entity in Dataverse")

        def roles_of_frrt() -> set[str]:
            return {str(r["RoleId"]) for r in fo.get_all("ResourceRoles", {"cross-company": "true",
                                                                          "$filter": "dataAreaId eq 'frrt'"})}

        wait_for(lambda: roles_of_frrt() >= dv_roles, ARRIVE, "every role in the new legal entity")

        assert dv.request("DELETE", f"bookableresourcecategories({role_id})").status_code < 300
        wait_for(lambda: not roles_in_finance("Data Engineer"), ARRIVE, "the role gone from every company")
        left = roles_of_frrt()
        assert "Data Engineer" not in left and dv_roles - {"Data Engineer"} <= left
        bootstrap = stack.env["DUALWRITE_KAFKA__BOOTSTRAP_SERVERS"]
        assert [read_headers(m.headers()) for m in read_topic(bootstrap, "sync.dlq")] == []
