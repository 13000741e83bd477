"""The demo's billing (domain.md 1.3): a contract whose time is invoiced and the invoice posted.

`dualwrite.scenario.Scenario` makes projects without a contract, so approved time on them makes
only a cost actual and there is nothing to invoice. `Billing.make` adds, through the Dataverse
API as a project manager would: a contract for the scenario's customer with that customer as its
funding source, a project on it with one task and a time-and-material contract line, a day of
approved time (Dataverse creates its cost and unbilled-sales actuals), and a proforma invoice,
confirmed (Dataverse creates the billed-sales actual and its connections). Every actual it
makes is also expected in Finance staging, voucher back, by the scenario's `progress`.

In Finance the project accountant gives the contract its sales tax group (``TAX_GROUP``;
`tax_setup`, once the contract has arrived: dual-write maps no tax group). Finance's periodic
jobs then post the journal and the invoice proposal, whose posting computes each line's sales
tax; `progress` counts the invoice as arrived once its proposal is Posted and every billed-sales
actual in Dataverse carries the voucher and the sales tax Finance computed for it.
"""

from __future__ import annotations

from typing import Any

from connectors.common.odata import literal
from dualwrite.scenario import Scenario

__all__ = ["TAX_GROUP", "Billing"]

TAX_GROUP = "CA"  # a sales tax group of the seeded usmf tax setup (emulators.finance.posting)
_BILLED_SALES = 192350006  # msdyn_transactiontypecode
_TIME_AND_MATERIAL = 192350000  # msdyn_billingmethod


class Billing:
    """One billed contract of a demo run; `make` once, then `tax_setup` and `progress` per tick."""

    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario
        self.contract: str | None = None  # its number (Finance's ProjectContractId)
        self.invoice: str | None = None  # the proforma's number (Finance's InvoiceProposalId)
        self.project: str | None = None  # the project on the contract, by number
        self.billed: set[str] = set()  # the billed-sales actuals' ids
        self._taxed = False

    def _create(self, entity_set: str, primary_key: str, body: dict[str, Any], what: str) -> str:
        resp = self.scenario.dv.request("POST", entity_set, headers={"Prefer": "return=representation"},
                                        json=body)
        self.scenario.check(resp, what)
        return str(resp.json()[primary_key])

    def make(self) -> list[str]:
        """Contract, project, time, confirmed proforma; returns what it did."""
        s = self.scenario
        company, customer = f"/cdm_companies({s.company_id()})", f"/accounts({s.customer_id()})"
        self.contract, self.invoice = f"{s.prefix}-K00001", f"{s.prefix}-INV00001"
        order = self._create("salesorders", "salesorderid", {
            "ordernumber": self.contract, "name": f"Contract {self.contract}", "customerid@odata.bind": customer,
            "msdyn_owningcompany@odata.bind": company, "transactioncurrencyid": "USD"},
            f"create contract {self.contract}")
        self._create("msdyn_projectcontractsplitbillingrules", "msdyn_projectcontractsplitbillingruleid", {
            "msdyn_name": f"{s.customer} 100%", "msdyn_salesorder@odata.bind": f"/salesorders({order})",
            "msdyn_customer@odata.bind": customer, "msdyn_percentage": 100}, "create funding source")
        self.project = project = s.create_project(contract=order)
        s.create_task(project, "1")
        self._create("salesorderdetails", "salesorderdetailid", {
            "salesorderid@odata.bind": f"/salesorders({order})",
            "msdyn_project@odata.bind": f"/msdyn_projects({s.project_id(project)})", "msdyn_linenumber": "1",
            "productdescription": "Time and material", "msdyn_billingmethod": _TIME_AND_MATERIAL,
            "transactioncurrencyid": "USD"}, "create contract line")
        actuals = s.log_time(project, "1", hours=6.0)
        invoice = self._create("invoices", "invoiceid", {
            "invoicenumber": self.invoice, "name": f"Proforma {self.invoice}", "statuscode": 1,
            "customerid@odata.bind": customer, "salesorderid@odata.bind": f"/salesorders({order})",
            "msdyn_owningcompany@odata.bind": company, "transactioncurrencyid": "USD"},
            f"create proforma invoice {self.invoice}")
        resp = s.dv.request("POST", f"invoices({invoice})/Microsoft.Dynamics.CRM.msdyn_ConfirmInvoice")
        s.check(resp, f"confirm proforma invoice {self.invoice}")
        for row in resp.json().get("value", []):
            if "msdyn_actualid" in row and row.get("msdyn_transactiontypecode") == _BILLED_SALES \
                    and not row.get("msdyn_skipsync"):  # not its connections, not the reversal
                self.billed.add(str(row["msdyn_actualid"]))
                s.expected.finance_actuals[(s.company, str(row["msdyn_actualid"]))] = {
                    "ProjectId": project, "TaskId": "1", "Quantity": 6.0, "TransType": "BilledSales"}
        return [f"contract {self.contract} with project {project} on it, a T&M line, 6 h approved: "
                f"{len(actuals)} actual(s)",
                f"proforma invoice {self.invoice} confirmed: {len(self.billed)} billed-sales actual(s)"]

    def tax_setup(self) -> str | None:
        """The accountant's step in Finance: the contract's sales tax group, set once the contract
        has arrived (what it did, or None)."""
        if self.contract is None or self._taxed:
            return None
        key = f"ProjectContractHeaders(dataAreaId={literal(self.scenario.company)}," \
              f"ProjectContractId={literal(self.contract)})"
        resp = self.scenario.fo.request("GET", key)
        if resp.status_code == 404:
            return None
        self.scenario.check(resp, f"read contract {self.contract} in Finance")
        resp = self.scenario.fo.request("PATCH", key, json={"SalesTaxGroupCode": TAX_GROUP})
        self.scenario.check(resp, f"set the sales tax group of contract {self.contract}")
        self._taxed = True
        return f"Finance: contract {self.contract} gets sales tax group {TAX_GROUP}"

    def progress(self) -> tuple[int, int]:
        """(invoices posted with their sales tax back in Dataverse, invoices made)."""
        if self.invoice is None:
            return 0, 0
        s = self.scenario
        proposals = s.fo.get_all("InvoiceProposals", {"cross-company": "true", "$filter":
                                                      f"InvoiceProposalId eq {literal(self.invoice)}"})
        if not proposals or proposals[0]["Status"] != "Posted":
            return 0, 1
        staged = {str(r["ActualId"]): r for r in s.fo.get_all("ActualsStaging", {
            "cross-company": "true", "$filter": f"ProjectId eq {literal(str(self.project))}"})}
        back = {str(r["msdyn_actualid"]): r for r in s.dv.get_all("msdyn_actuals", {
            "$select": "msdyn_actualid,msdyn_vouchernumber,msdyn_salestaxamount",
            "$filter": " or ".join(f"msdyn_actualid eq {a}" for a in sorted(self.billed))})}
        arrived = all(a in staged and a in back and staged[a]["SalesTaxAmount"] is not None
                      and (back[a]["msdyn_vouchernumber"], back[a]["msdyn_salestaxamount"])
                      == (staged[a]["Voucher"], staged[a]["SalesTaxAmount"]) for a in self.billed)
        return int(arrived and bool(self.billed)), 1
