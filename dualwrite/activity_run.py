"""Acting on a `dualwrite.activity` plan: read the world it builds on, then make its requests.

Requests go through `ApiSession` (token renewal, waits on 429/5xx). A transport failure or a
refused client is a typed error naming the settings to check (exit 2 in the command); a refused
write is `Refused` with the API's answer (exit 1). Dataverse rows are addressed by the ids their
``POST`` answered (``OData-EntityId``), Finance rows by key with ``cross-company=true``; a bound
action (``Op.action``: approving a time entry) is a ``POST`` to the row's address.
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

__all__ = ["ApiUnreachable", "CredentialsRefused", "Refused", "read_world", "run"]


class Refused(ScenarioError):
    """An API refused one of the scenario's requests (exit 1)."""


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
    products: list[tuple[str, str]] = []  # released products: a company's, with a number
    for row in _active(api, "products", "productid,productnumber,_msdyn_company_value"):
        company = companies.get(str(row.get("_msdyn_company_value")))
        if company is not None and row.get("productnumber"):
            ids[f"product:{row['productnumber']}"] = ("products", str(row["productid"]))
            products.append((company[0], str(row["productnumber"])))
    world = World(tuple(Company(code, cur, tuple(sorted(accounts[code])))
                        for code, cur in sorted(companies.values())), finance,
                  resources=resources, roles=roles, dataverse_categories=categories,
                  time_categories=_time_categories(api), products=tuple(sorted(products)))
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
            url = op.table if op.key is None else entity_key(op.table, dict(op.key))
            params = None if op.key is None else {"cross-company": "true"}
            resp = self.api.call("finance", op.method, url, json=body or None, params=params)
        else:
            url = (f"{self._address(op)}/Microsoft.Dynamics.CRM.{op.action}" if op.action
                   else op.table if op.method == "POST" else self._address(op))
            headers = {"If-Match": "*"} if op.method == "PATCH" else None
            resp = self.api.call("dataverse", op.method, url, json=body or None, headers=headers)
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

    def _bind(self, ref: Ref) -> str:
        table, guid = self.ids[ref.handle]
        return f"/{table}({guid})"

    def _address(self, op: Op) -> str:
        assert op.row is not None
        table, guid = self.ids[op.row.handle]
        return f"{table}({guid})"


def run(ops: Sequence[Op], sessions: Mapping[System, ApiSession], ids: Mapping[str, tuple[str, str]], *,
        seed: int, rate: float, seconds: float | None, late_s: float,
        on_change: Callable[[Op], None] = lambda op: None) -> list[Op]:
    """Make the plan's requests, ``rate`` per second (0: as fast as the APIs answer), for at most
    ``seconds``; ``late`` ops wait until ``late_s`` after the start (those after them in the plan
    go on meanwhile). Returns the ops made, in order."""
    actor = _Actor(sessions, ids, seed)
    start = time.monotonic()
    done: list[Op] = []
    held: list[Op] = []

    def elapsed() -> float:
        return time.monotonic() - start

    def make(op: Op) -> None:
        if rate > 0:
            time.sleep(max(0.0, start + len(done) / rate - time.monotonic()))
        actor.do(op)
        done.append(op)
        on_change(op)

    def over() -> bool:
        return seconds is not None and elapsed() >= seconds

    for op in ops:
        if held and elapsed() >= late_s:
            for late in held:
                make(late)
            held.clear()
        if over():
            return done
        if op.late and (held or elapsed() < late_s):
            held.append(op)
            continue
        make(op)
    if held:
        time.sleep(max(0.0, late_s - elapsed()))
        for late in held:
            if over():
                break
            make(late)
    return done
