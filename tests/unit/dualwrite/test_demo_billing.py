"""The demo's billing: the accountant's tax setup once the contract is in Finance, and the
invoice counted as arrived only once its proposal is posted and its sales tax is back."""

from __future__ import annotations

from typing import Any

import pytest
from rich.table import Table

from dualwrite.demo.billing import TAX_GROUP, Billing
from dualwrite.demo.components import State
from dualwrite.demo.run import _table
from dualwrite.scenario import Progress, Scenario
from tests.unit.dualwrite.fakes import Response

pytestmark = pytest.mark.unit


class FakeApi:
    """Rows per entity set for `get_all`; `request` answers from ``answers`` and records calls."""

    def __init__(self, rows: dict[str, list[dict[str, Any]]] | None = None,
                 answers: dict[tuple[str, str], Response] | None = None) -> None:
        self.rows = rows or {}
        self.answers = answers or {}
        self.calls: list[tuple[str, str, Any]] = []

    def get_all(self, entity: str, params: dict[str, str]) -> list[dict[str, Any]]:
        return self.rows.get(entity, [])

    def request(self, method: str, url: str, **kwargs: Any) -> Response:
        self.calls.append((method, url, kwargs.get("json")))
        return self.answers.get((method, url), Response(204))


CONTRACT_URL = "ProjectContractHeaders(dataAreaId='usmf',ProjectContractId='DW-K00001')"


def billing(dv: FakeApi, fo: FakeApi) -> Billing:
    made = Billing(Scenario(dv, fo))  # type: ignore[arg-type]
    made.contract, made.invoice, made.project = "DW-K00001", "DW-INV00001", "DW-00001"
    made.billed = {"b1"}
    return made


def test_the_tax_group_is_set_once_and_only_after_the_contract_arrived() -> None:
    fo = FakeApi(answers={("GET", CONTRACT_URL): Response(404)})
    made = billing(FakeApi(), fo)
    assert made.tax_setup() is None and [c[0] for c in fo.calls] == ["GET"]
    fo.answers[("GET", CONTRACT_URL)] = Response(200, {"ProjectContractId": "DW-K00001"})
    assert made.tax_setup() is not None
    assert fo.calls[-1] == ("PATCH", CONTRACT_URL, {"SalesTaxGroupCode": TAX_GROUP})
    assert made.tax_setup() is None and len(fo.calls) == 3


def _state(status: str, dv_tax: float | None) -> tuple[FakeApi, FakeApi]:
    fo = FakeApi({"InvoiceProposals": [{"InvoiceProposalId": "DW-INV00001", "Status": status}],
                  "ActualsStaging": [{"ActualId": "b1", "Voucher": "PIV-000001", "SalesTaxAmount": 43.5}]})
    dv = FakeApi({"msdyn_actuals": [{"msdyn_actualid": "b1", "msdyn_vouchernumber": "PIV-000001",
                                     "msdyn_salestaxamount": dv_tax}]})
    return dv, fo


def test_an_invoice_arrives_when_posted_and_its_sales_tax_is_back_in_dataverse() -> None:
    assert billing(*_state("Open", 43.5)).progress() == (0, 1)
    assert billing(*_state("Posted", None)).progress() == (0, 1)  # posted, tax not back yet
    assert billing(*_state("Posted", 43.5)).progress() == (1, 1)
    assert Billing(Scenario(FakeApi(), FakeApi())).progress() == (0, 0)  # type: ignore[arg-type]


class FakeStack:
    class sup:  # the attribute the table reads
        children: dict[str, Any] = {}


def _rows(invoices: tuple[int, int]) -> list[str]:
    progress = Progress((1, 1), (1, 1), (1, 1), [])
    group = _table(FakeStack(), State(progress, invoices), [], "draining")  # type: ignore[arg-type]
    flow = group.renderables[1]
    assert isinstance(flow, Table)
    return [str(cell) for cell in flow.columns[0].cells]


def test_the_progress_table_shows_invoices_only_when_the_demo_made_one() -> None:
    assert "invoices" not in _rows((0, 0))
    assert "invoices" in _rows((0, 1))
