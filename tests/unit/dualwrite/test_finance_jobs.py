"""One round of Finance's periodic jobs: import from staging, then post every Draft journal."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from dualwrite.finance_jobs import IMPORT, FinanceJobFailed, Schedule, run_round

pytestmark = pytest.mark.unit


class FakeFinance:
    """The two actions and the journal list, as the Finance OData API answers them."""

    def __init__(self, journals: list[tuple[str, str]], refuse: frozenset[str] = frozenset(),
                 import_status: int = 200, proposals: list[tuple[str, str]] | None = None) -> None:
        self.drafts = list(journals)  # (dataAreaId, JournalId) in Draft
        self.proposals = list(proposals or [])  # (dataAreaId, InvoiceProposalId) still Open
        self.refuse = refuse
        self.import_status = import_status
        self.calls: list[tuple[str, str, dict[str, Any]]] = []
        self.client_id, self.api_url = "fake", "http://fo/data"

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        self.calls.append((method, url, kwargs))
        if (method, url) == ("POST", IMPORT):
            if self.import_status != 200:
                return httpx.Response(self.import_status, json={"error": {"message": "no"}})
            return httpx.Response(200, json={"Imported": 3, "Invalid": 1,
                                             "Journals": [j for _, j in self.drafts[-1:]]})
        if (method, url) == ("GET", "IntegrationJournals"):
            where = kwargs["params"]["$filter"]
            return httpx.Response(200, json={"value": [
                {"dataAreaId": c, "JournalId": j} for c, j in self.drafts if c in where or "dataAreaId" not in where]})
        if (method, url) == ("GET", "InvoiceProposals"):
            return httpx.Response(200, json={"value": [{"dataAreaId": c, "InvoiceProposalId": n}
                                                       for c, n in self.proposals]})
        if method == "POST" and url.startswith("InvoiceProposals("):
            number = url.split("InvoiceProposalId='")[1].split("'")[0]
            if number in self.refuse:
                return httpx.Response(400, json={"error": {"message": "unbilled sales not posted yet"}})
            self.proposals = [(c, n) for c, n in self.proposals if n != number]
            return httpx.Response(200, json={"InvoiceProposalId": number, "Status": "Posted"})
        if method == "POST" and url.startswith("IntegrationJournals("):
            journal = url.split("JournalId='")[1].split("'")[0]
            if journal in self.refuse:
                return httpx.Response(400, json={"error": {"message": f"Journal {journal} refused"}})
            self.drafts = [(c, j) for c, j in self.drafts if j != journal]
            return httpx.Response(200, json={"JournalId": journal, "Status": "Posted"})
        raise AssertionError(f"unexpected {method} {url}")


def test_a_round_imports_then_posts_every_draft_journal_and_counts_what_it_did() -> None:
    fo = FakeFinance([("usmf", "PJ-000001"), ("demf", "PJ-000002")])
    done = run_round(fo)  # type: ignore[arg-type]
    assert (done.imported, done.invalid, done.journals_created) == (3, 1, ("PJ-000002",))
    assert done.journals_posted == ("PJ-000001", "PJ-000002") and not done.refused
    posts = [(url, kw["params"]) for method, url, kw in fo.calls if url.startswith("IntegrationJournals(")]
    assert posts[1] == ("IntegrationJournals(dataAreaId='demf',JournalId='PJ-000002')/"
                        "Microsoft.Dynamics.DataEntities.Post", {"cross-company": "true"})
    assert fo.calls[0][2]["json"] is None  # every legal entity
    assert not fo.drafts
    assert run_round(fo).journals_posted == ()  # type: ignore[arg-type]


def test_a_refused_posting_is_reported_and_the_other_journals_still_post() -> None:
    fo = FakeFinance([("usmf", "PJ-000001"), ("usmf", "PJ-000002")], refuse=frozenset({"PJ-000001"}))
    done = run_round(fo)  # type: ignore[arg-type]
    assert done.journals_posted == ("PJ-000002",)
    assert len(done.refused) == 1 and done.refused[0].startswith("usmf/PJ-000001: HTTP 400")
    assert "Journal PJ-000001 refused" in done.refused[0]
    assert fo.drafts == [("usmf", "PJ-000001")]  # still Draft: the next round tries again


def test_one_company_imports_and_posts_only_its_journals() -> None:
    fo = FakeFinance([("usmf", "PJ-000001"), ("demf", "PJ-000002")])
    done = run_round(fo, "demf")  # type: ignore[arg-type]
    assert fo.calls[0][2]["json"] == {"dataAreaId": "demf"}
    assert done.journals_posted == ("PJ-000002",)
    assert fo.drafts == [("usmf", "PJ-000001")]


def test_an_import_finance_refuses_is_a_typed_error_naming_the_job() -> None:
    fo = FakeFinance([("usmf", "PJ-000001")], import_status=400)
    with pytest.raises(FinanceJobFailed, match="Import from staging table answered HTTP 400"):
        run_round(fo)  # type: ignore[arg-type]
    assert fo.drafts == [("usmf", "PJ-000001")]  # nothing posted after a failed import


def test_the_schedule_runs_a_round_only_when_due_and_sums_the_rounds() -> None:
    fo = FakeFinance([("usmf", "PJ-000001")])
    now = [100.0]
    schedule = Schedule(fo, 30.0, clock=lambda: now[0])  # type: ignore[arg-type]
    assert schedule.tick() is None and not fo.calls  # not due before 30 s
    now[0] = 130.0
    first = schedule.tick()
    assert first is not None and first.journals_posted == ("PJ-000001",)
    assert schedule.tick() is None  # the next round is due 30 s after this one
    schedule.run()  # the run's end: once more, now
    assert len(schedule.rounds) == 2
    assert schedule.summary() == ("finance jobs: 2 rounds, 6 actuals imported, 1 invalid, 1 journals posted, "
                                  "0 invoice proposals posted")


def test_open_invoice_proposals_post_after_the_journals_and_a_refused_one_waits_for_the_next_round() -> None:
    fo = FakeFinance([("usmf", "PJ-000001")], refuse=frozenset({"IP-2"}),
                     proposals=[("usmf", "IP-1"), ("usmf", "IP-2")])
    done = run_round(fo)  # type: ignore[arg-type]
    posts = [url for method, url, _ in fo.calls if method == "POST" and url != IMPORT]
    assert posts[0].startswith("IntegrationJournals(") and posts[1].startswith("InvoiceProposals(")
    assert done.proposals_posted == ("IP-1",) and done.refused[0].startswith("usmf/IP-2: HTTP 400")
    assert fo.proposals == [("usmf", "IP-2")] and "1 invoice proposals posted" in done.summary()
