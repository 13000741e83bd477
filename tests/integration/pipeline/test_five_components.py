"""The demo's five components through the real pipeline, as `dualwrite demo` runs them
(`dualwrite.demo.components`): projects and tasks (1), approved time and a resource (2), a
billed contract (3), and Finance's expense report (4) and vendor invoice (5) on a project once it
is there, each with a line of no project. Everything comes back (actuals staged and posted with
their vouchers back in Dataverse, the invoice's sales tax, the Expense and Material actuals of
Finance's documents), nothing is dead-lettered, and reconcile finds every map in sync: what the
demo checks before it says so.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from dualwrite.demo.components import Components
from dualwrite.scenario import Scenario
from tests.support.components import come_back
from tests.support.pipeline import assert_reconciled, read_topic, running_stack
from topics import read_headers

pytestmark = pytest.mark.integration


def test_the_five_components_come_back_and_every_map_is_in_sync(tmp_path: Path) -> None:
    with running_stack(tmp_path) as stack:
        components = Components(Scenario(stack.dataverse(), stack.finance()))
        components.make()
        state = come_back(components, 300.0)
        assert (state.invoices, state.procured) == ((1, 1), (2, 2))
        # time (cost), billing (unbilled and billed sales), the expense and the vendor invoice line
        assert state.progress.vouchers[0] == state.progress.vouchers[1] >= 4
        fo = stack.finance()
        exported = fo.get_all("ProjectVendorInvoiceLines", {"cross-company": "true"})
        assert [r["ExternalInvoiceLine"] for r in exported if r["InvoiceId"] == "DW-VI00001"] == ["DW-VI00001-1"]
        assert not [read_headers(m.headers()) for m in read_topic(
            stack.env["DUALWRITE_KAFKA__BOOTSTRAP_SERVERS"], "sync.dlq")]
        assert_reconciled(stack)
