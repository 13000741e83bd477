"""Acting on a `dualwrite.activity` plan: read the world it builds on, then make its requests.

Requests go through `ApiSession` (token renewal, waits on 429/5xx). A transport failure or a
refused client is a typed error naming the settings to check (exit 2 in the command); a refused
write is `Refused` with the API's answer (exit 1). Dataverse rows are addressed by the ids their
``POST`` answered (``OData-EntityId``), Finance rows by key with ``cross-company=true``. An
action (``Op.action``) is a ``POST`` to ``<address>/<namespace>.<action>``, the address being the
row's (approving a time entry, posting a vendor invoice) or, for a Finance action bound to the
entity set, the set's (posting an expense report), in one place for both systems: `_Actor.url`.
A request that needs a Finance row (``Op.awaits``: the project an expense is posted on) waits
until Finance holds it, polled every `POLL_S`, for at most ``wait_s``: then `NotArrived` (exit 1),
since only the pipeline brings it; the run's ``seconds`` running out ends the wait quietly.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import httpx

from connectors.finance.client import entity_key
from dualwrite.activity import Company, Op, Ref, ScenarioError, World
from dualwrite.apiclient import ApiSession, ApiUnreachable, CredentialsRefused, checked_request
from topics import System

__all__ = ["ApiUnreachable", "CredentialsRefused", "NotArrived", "Refused", "read_world", "run"]

WAIT_S = 300.0  # how long a request waits for the Finance row it needs (`Op.awaits`)
POLL_S = 1.0
_NAMESPACE = {"dataverse": "Microsoft.Dynamics.CRM", "finance": "Microsoft.Dynamics.DataEntities"}


class Refused(ScenarioError):
    """An API refused one of the scenario's requests (exit 1)."""


class NotArrived(ScenarioError):
    """A row a request needs never appeared in Finance (exit 1): is the pipeline running?"""


_ENTITY_ID = re.compile(r"\(([0-9a-fA-F-]{36})\)$")


class _Api:
    """Requests through `ApiSession`, with transport and credential failures as typed errors."""

    def __init__(self, sessions: Mapping[System, ApiSession]) -> None:
        self.sessions = sessions

    def call(self, system: System, method: str, url: str, **kwargs: Any) -> httpx.Response:
        return checked_request(self.sessions[system], system, method, url, **kwargs)

    def rows(self, system: System, table: str, params: dict[str, str]) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        resp = self.call(system, "GET", table, params=params)
        while True:
            if resp.status_code != 200:
                raise Refused(f"{system} GET {table} answered HTTP {resp.status_code}: "
                                   f"{' '.join(resp.text[:200].split())}")
            body = resp.json()
            rows.extend(body.get("value", []))
            if not body.get("@odata.nextLink"):
                return rows
            resp = self.call(system, "GET", str(body["@odata.nextLink"]))


def read_world(sessions: Mapping[System, ApiSession]) -> tuple[World, dict[str, tuple[str, str]]]:
    """The world the plan builds on, and the Dataverse ids of its rows by `Ref` handle."""
    api = _Api(sessions)
    ids: dict[str, tuple[str, str]] = {}
    companies: dict[str, tuple[str, str]] = {}  # cdm_companyid -> (code, currency)
    for row in api.rows("dataverse", "cdm_companies", {"$select": "cdm_companyid,cdm_companycode,accountingcurrency"}):
        code = str(row["cdm_companycode"])
        companies[str(row["cdm_companyid"])] = (code, str(row.get("accountingcurrency") or "USD"))
        ids[f"company:{code}"] = ("cdm_companies", str(row["cdm_companyid"]))
    accounts: dict[str, list[str]] = {code: [] for code, _ in companies.values()}
    for row in api.rows("dataverse", "accounts", {
            "$select": "accountid,accountnumber,_msdyn_company_value,customertypecode"}):
        company = companies.get(str(row.get("_msdyn_company_value")))
        if company is None or not row.get("accountnumber") or row.get("customertypecode") not in (None, 3):
            continue  # a vendor-as-account (11) or an account of no company is no contract customer
        accounts[company[0]].append(str(row["accountnumber"]))
        ids[f"account:{company[0]}/{row['accountnumber']}"] = ("accounts", str(row["accountid"]))
    finance = tuple(sorted((str(r["dataAreaId"]), str(r.get("AccountingCurrency") or "USD"))
                           for r in api.rows("finance", "LegalEntities", {})))
    resources, roles, categories = _team_rows(api, ids)
    workers = tuple(sorted((companies[str(r["_msdyn_company_value"])][0], str(r["msdyn_personnelnumber"]))
                           for r in _active(api, "bookableresources", "msdyn_personnelnumber,_msdyn_company_value")
                           if r.get("msdyn_personnelnumber") and str(r.get("_msdyn_company_value")) in companies))
    products: list[tuple[str, str]] = []  # released products: a company's, with a number
    for row in _active(api, "products", "productid,productnumber,_msdyn_company_value"):
        company = companies.get(str(row.get("_msdyn_company_value")))
        if company is not None and row.get("productnumber"):
            ids[f"product:{row['productnumber']}"] = ("products", str(row["productid"]))
            products.append((company[0], str(row["productnumber"])))
    world = World(tuple(Company(code, cur, tuple(sorted(accounts[code])))
                        for code, cur in sorted(companies.values())), finance,
                  resources=resources, roles=roles, dataverse_categories=categories,
                  time_categories=_time_categories(api), products=tuple(sorted(products)),
                  expense_categories=_shared_categories(api, categories, "Expense"),
                  item_categories=_shared_categories(api, categories, "Item"), workers=workers)
    return world, ids


def _active(api: _Api, table: str, select: str) -> list[dict[str, Any]]:
    return [r for r in api.rows("dataverse", table, {"$select": f"{select},statecode"}) if r.get("statecode") in (0, None)]


def _team_rows(api: _Api, ids: dict[str, tuple[str, str]]) -> tuple[tuple[str, ...], ...]:
    """Dataverse's active bookable resources and roles (names) and its transaction categories'
    integration ids, each also recorded as a `Ref` handle (``resource:``, ``known-role:``,
    ``category:``)."""
    found: list[tuple[str, ...]] = []
    for table, pk, name, handle in (("bookableresources", "bookableresourceid", "name", "resource"),
                                    ("bookableresourcecategories", "bookableresourcecategoryid", "name", "known-role"),
                                    ("msdyn_transactioncategories", "msdyn_transactioncategoryid",
                                     "msdyn_integrationid", "category")):
        names = []
        for row in _active(api, table, f"{pk},{name}"):
            if row.get(name):
                ids[f"{handle}:{row[name]}"] = (table, str(row[pk]))
                names.append(str(row[name]))
        found.append(tuple(sorted(names)))
    return tuple(found)


def _time_categories(api: _Api) -> tuple[tuple[str, str], ...]:
    """Finance's transaction categories that have an Hour project category in some legal
    entity (the import from staging refuses time under any other), as (CategoryId, Name)."""
    shared = {str(r["SharedCategoryId"]) for r in api.rows("finance", "ProjectCategories", {
        "cross-company": "true", "$filter": "TransactionType eq 'Hour'"}) if r.get("SharedCategoryId")}
    wanted = {str(r["TransactionCategoryId"]) for r in api.rows("finance", "SharedCategories", {})
              if str(r["CategoryId"]) in shared}
    return tuple(sorted((str(r["CategoryId"]), str(r.get("Name") or r["CategoryId"]))
                        for r in api.rows("finance", "TransactionCategories", {}) if str(r["CategoryId"]) in wanted))


def _shared_categories(api: _Api, dataverse: tuple[str, ...], kind: str) -> tuple[tuple[str, str], ...]:
    """Finance's shared categories of transaction type ``kind`` (an Expense one only when usable
    in expenses) of transaction categories Dataverse holds, as (CategoryId, expense type or
    name): what an expense category or a vendor invoice line's project category can stand on so
    that its rows are accepted in Dataverse."""
    return tuple(sorted((str(r["CategoryId"]), str(r.get("ExpenseType") or r.get("Name") or r["CategoryId"]))
                        for r in api.rows("finance", "SharedCategories", {})
                        if r.get("TransactionType") == kind and str(r.get("TransactionCategoryId")) in dataverse
                        and (kind != "Expense" or r.get("CanBeUsedInExpense") == "Yes")))


class _Actor:
    def __init__(self, sessions: Mapping[System, ApiSession], ids: Mapping[str, tuple[str, str]],
                 seed: int) -> None:
        self.api = _Api(sessions)
        self.ids = dict(ids)
        self.seed = seed

    def do(self, op: Op) -> None:
        body = {(f"{k}@odata.bind" if isinstance(v, Ref) else k): (self._bind(v) if isinstance(v, Ref) else v)
                for k, v in op.body.items()}
        if op.system == "finance":
            params = None if op.key is None else {"cross-company": "true"}
            resp = self.api.call("finance", op.method, self.url(op), json=body or None, params=params)
        else:
            headers = {"If-Match": "*"} if op.method == "PATCH" else None
            resp = self.api.call("dataverse", op.method, self.url(op), json=body or None, headers=headers)
        if resp.status_code >= 400:
            hint = (f" (rows of seed {self.seed} may exist already: use another --seed)"
                    if op.method == "POST" and (resp.status_code in (409, 412)
                                                or "already exist" in resp.text.lower()) else "")
            raise Refused(f"{op.system} refused {op.method} {op.table} ({op.kind}): HTTP "
                               f"{resp.status_code} {' '.join(resp.text[:200].split())}{hint}")
        if op.system == "dataverse" and op.method == "POST" and op.row is not None and not op.action:
            found = _ENTITY_ID.search(resp.headers.get("OData-EntityId", ""))
            if found is None:
                raise Refused(f"dataverse POST {op.table} answered no OData-EntityId")
            self.ids[op.row.handle] = (op.table, found.group(1))

    def url(self, op: Op) -> str:
        """Where ``op`` goes: the entity set (a create), the row, or an action of either."""
        if op.system == "finance":
            address = op.table if op.key is None else entity_key(op.table, dict(op.key))
        else:
            address = op.table if op.method == "POST" and not op.action else self._address(op)
        return f"{address}/{_NAMESPACE[op.system]}.{op.action}" if op.action else address

    def holds(self, table: str, key: Mapping[str, Any]) -> bool:
        """Whether Finance holds the row ``key`` names (in any legal entity's view)."""
        resp = self.api.call("finance", "GET", entity_key(table, dict(key)), params={"cross-company": "true"})
        if resp.status_code not in (200, 404):
            raise Refused(f"finance GET {table} answered HTTP {resp.status_code}: "
                          f"{' '.join(resp.text[:200].split())}")
        return resp.status_code == 200

    def _bind(self, ref: Ref) -> str:
        table, guid = self.ids[ref.handle]
        return f"/{table}({guid})"

    def _address(self, op: Op) -> str:
        assert op.row is not None
        table, guid = self.ids[op.row.handle]
        return f"{table}({guid})"


def run(ops: Sequence[Op], sessions: Mapping[System, ApiSession], ids: Mapping[str, tuple[str, str]], *,
        seed: int, rate: float, seconds: float | None, late_s: float,
        on_change: Callable[[Op], None] = lambda op: None, wait_s: float = WAIT_S) -> list[Op]:
    """Make the plan's requests, ``rate`` per second (0: as fast as the APIs answer), for at most
    ``seconds``; ``late`` ops wait until ``late_s`` after the start (those after them in the plan
    go on meanwhile), an op that ``awaits`` a Finance row until it is there (at most ``wait_s``).
    Returns the ops made, in order."""
    actor = _Actor(sessions, ids, seed)
    start = time.monotonic()
    done: list[Op] = []
    held: list[Op] = []

    def elapsed() -> float:
        return time.monotonic() - start

    def over() -> bool:
        return seconds is not None and elapsed() >= seconds

    def arrived(op: Op) -> bool:
        """Whether the row ``op`` awaits is in Finance; False when the run's time ran out first."""
        if op.awaits is None:
            return True
        table, key = op.awaits
        limit = time.monotonic() + wait_s
        while not actor.holds(table, key):
            if over():
                return False
            if time.monotonic() >= limit:
                raise NotArrived(f"{table} {dict(key)} did not reach Finance within {wait_s:.0f}s "
                                 f"(needed to post a {op.kind}): is the pipeline running?")
            time.sleep(POLL_S)
        return True

    def make(op: Op) -> bool:
        if not arrived(op):
            return False
        if rate > 0:
            time.sleep(max(0.0, start + len(done) / rate - time.monotonic()))
        actor.do(op)
        done.append(op)
        on_change(op)
        return True

    for op in ops:
        if held and elapsed() >= late_s:
            for late in held:
                if not make(late):
                    return done
            held.clear()
        if over():
            return done
        if op.late and (held or elapsed() < late_s):
            held.append(op)
            continue
        if not make(op):
            return done
    if held:
        time.sleep(max(0.0, late_s - elapsed()))
        for late in held:
            if over() or not make(late):
                break
    return done
