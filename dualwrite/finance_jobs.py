"""Finance's periodic Project Operations jobs (domain.md 1.2), run as its batch scheduler would.

In Finance an accountant schedules *Import from staging table* (PMA > Periodic > Project
Operations Integration), the posting of the integration journals it makes and of the invoice
proposals; nothing else moves a staged actual on. Without them the actuals dual-write stages never reach the ledger and
no voucher ever flows back to Dataverse, so the demo and `dualwrite scenario` run them here:
`run_round` is one run of the jobs through the Finance OData API (the emulator's actions
``ActualsStaging/ImportFromStaging``, ``IntegrationJournals(...)/Post`` and
``InvoiceProposals(...)/Post``); `Schedule` runs a
round every so many seconds as a caller's loop ticks (the scenario's requests), and once more at
the end.

A journal whose posting Finance refuses (a finished project, a missing exchange rate) stays
Draft: the round reports it in ``refused`` and goes on with the others, and the next round tries
it again, as a batch job logs a failed journal and carries on. A job that cannot run at all (the
import refused, the journal list unreadable) is `FinanceJobFailed`; an unreachable API or a
refused client is `ApiUnreachable` / `CredentialsRefused` (`dualwrite.apiclient`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from connectors.common.odata import literal
from connectors.finance.client import entity_key
from dualwrite.apiclient import ApiError, ApiSession, checked_request

__all__ = ["FinanceJobFailed", "JobRound", "Schedule", "run_round"]

IMPORT = "ActualsStaging/Microsoft.Dynamics.DataEntities.ImportFromStaging"
POST = "Microsoft.Dynamics.DataEntities.Post"


class FinanceJobFailed(ApiError):
    """Finance refused to run a periodic job, or answered it in a way we cannot read."""


@dataclass(frozen=True)
class JobRound:
    """What one round did: staged actuals imported / refused by the import, the journals it
    created, the journals posted, and the journals whose posting Finance refused (with why)."""

    imported: int = 0
    invalid: int = 0
    journals_created: tuple[str, ...] = ()
    journals_posted: tuple[str, ...] = ()
    proposals_posted: tuple[str, ...] = ()
    refused: tuple[str, ...] = field(default=())

    @property
    def idle(self) -> bool:
        """Nothing happened: no staged actual was new and no document was waiting to post."""
        return not (self.imported or self.invalid or self.journals_posted or self.proposals_posted
                    or self.refused)

    def summary(self) -> str:
        return (f"finance jobs: {self.imported} imported, {self.invalid} invalid, "
                f"{len(self.journals_created)} journals made, {len(self.journals_posted)} posted"
                + (f", {len(self.proposals_posted)} invoice proposals posted" if self.proposals_posted else "")
                + (f", {len(self.refused)} refused" if self.refused else ""))


def _answer(resp: httpx.Response, what: str) -> dict[str, Any]:
    if resp.status_code != 200:
        raise FinanceJobFailed(f"finance {what} answered HTTP {resp.status_code}: "
                               f"{' '.join(resp.text[:200].split())}")
    try:
        body = resp.json()
    except ValueError:
        raise FinanceJobFailed(f"finance {what} answered no JSON") from None
    if not isinstance(body, dict):
        raise FinanceJobFailed(f"finance {what} answered {type(body).__name__}, not an object")
    return body


def _unposted(session: ApiSession, entity: str, number: str, status: str,
              company: str | None) -> list[dict[str, Any]]:
    """Every document of ``entity`` still in ``status`` (keys only), all pages."""
    where = f"Status eq '{status}'" + (f" and dataAreaId eq {literal(company)}" if company else "")
    params = {"cross-company": "true", "$filter": where, "$select": f"dataAreaId,{number}",
              "$orderby": f"dataAreaId,{number}"}
    found: list[dict[str, Any]] = []
    url = entity
    while True:
        body = _answer(checked_request(session, "finance", "GET", url, params=params), f"{entity} list")
        found.extend(body.get("value", []))
        url, params = str(body.get("@odata.nextLink") or ""), {}
        if not url:
            return found


def _post_each(session: ApiSession, entity: str, number: str, status: str, company: str | None,
               refused: list[str]) -> tuple[str, ...]:
    """Post every unposted document of ``entity``; what Finance refuses goes to ``refused``."""
    posted: list[str] = []
    for document in _unposted(session, entity, number, status, company):
        key = {"dataAreaId": str(document["dataAreaId"]), number: str(document[number])}
        resp = checked_request(session, "finance", "POST", f"{entity_key(entity, key)}/{POST}",
                               params={"cross-company": "true"})
        if resp.status_code == 200:
            posted.append(key[number])
        else:
            refused.append(f"{key['dataAreaId']}/{key[number]}: HTTP {resp.status_code} "
                           f"{' '.join(resp.text[:200].split())}")
    return tuple(posted)


def run_round(session: ApiSession, company: str | None = None) -> JobRound:
    """One run of *Import from staging table*, then posting of every Draft integration journal
    (those the import made now or in an earlier round whose posting failed), then of every Open
    invoice proposal (Finance refuses one whose unbilled sales are not journal-posted yet: the
    next round tries it again), in ``company`` or in every legal entity."""
    body = _answer(checked_request(session, "finance", "POST", IMPORT,
                                   json={"dataAreaId": company} if company else None),
                   "Import from staging table")
    refused: list[str] = []
    journals = _post_each(session, "IntegrationJournals", "JournalId", "Draft", company, refused)
    proposals = _post_each(session, "InvoiceProposals", "InvoiceProposalId", "Open", company, refused)
    return JobRound(imported=int(body.get("Imported") or 0), invalid=int(body.get("Invalid") or 0),
                    journals_created=tuple(str(j) for j in body.get("Journals") or ()),
                    journals_posted=journals, proposals_posted=proposals, refused=tuple(refused))


class Schedule:
    """Finance's batch scheduler for one run: `tick` runs a round once ``every_s`` passed since
    the last (or since the start), `run` runs one now; `rounds` keeps what each did."""

    def __init__(self, session: ApiSession, every_s: float, company: str | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.session, self.every_s, self.company, self.clock = session, every_s, company, clock
        self.rounds: list[JobRound] = []
        self._due = clock() + every_s

    def tick(self) -> JobRound | None:
        return self.run() if self.clock() >= self._due else None

    def run(self) -> JobRound:
        done = run_round(self.session, self.company)
        self.rounds.append(done)
        self._due = self.clock() + self.every_s
        return done

    def summary(self) -> str:
        """Totals of the rounds; ``invalid`` is the last round's (refused rows are re-read)."""
        last = self.rounds[-1] if self.rounds else JobRound()
        return (f"finance jobs: {len(self.rounds)} rounds, {sum(r.imported for r in self.rounds)} actuals "
                f"imported, {last.invalid} invalid, {sum(len(r.journals_posted) for r in self.rounds)} "
                f"journals posted, {sum(len(r.proposals_posted) for r in self.rounds)} invoice proposals posted"
                + (f", {len(last.refused)} refused" if last.refused else ""))
