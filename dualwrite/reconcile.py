"""Reconcile: read both systems through their APIs and say, per table map, where they disagree.

The check dual-write never offered, and the oracle of the demo and of the end-to-end and chaos
tests: it knows no map by name and no scenario, only the registry. For each map it computes what
the target must hold with the processor's own functions (`streams.transform.transform`: the
map's filter, key, value maps, defaults and lookups) and compares that with the target's rows by
target record key (`topics.target_key`, the key of the processor's commands):

- **in sync**: the target row exists and every mapped field equals the expected one, compared in
  the *readable* view (`Mapped.readable` against `observed_fields` of the row: what the target's
  own feed shows, ``_msdyn_company_value`` rather than the ``@odata.bind`` path; null and ``""``
  are the same value, since Finance has no null strings);
- **missing**: expected, absent; **different**: present, some mapped field differs (each field
  with both values), or a field the target fills for the source (``TableMap.write_back``: the
  voucher of a posted actual) is not on the source row yet;
- **extra**: a target row in the map's scope whose key no source row produces;
- **unresolved**: a source row the processor could not write either: a lookup names a row that
  is not there (the missing fact key: ``row:``, ``key:`` or ``present:``), or the map refuses it
  (`TransformError`, a dead letter in the pipeline), or its key is also produced by an earlier
  source row (the target can hold only one of them).

Lookups are resolved as the worker's facts would be, from the rows read (`Facts`): ``row`` facts
from the referenced source table indexed by record id (read once per run and kept: one paged read
costs fewer requests than one GET per id), ``key`` facts by transforming the referenced row with
the named map, ``present`` facts from the target rows of the maps writing that entity, with
their primary id as ``target_id``. A fan-out map expects one copy of each source row per member
(`Pending.for_member`), named ``<source id>@<member>`` as the worker names it. Dependencies are
not checked: a row whose dependency is absent from the target is expected all the same, and the
absent row is reported missing under its own map, once.

**Scope of "extra".** A target row counts for a map only when (1) every key field of the map is
set in it (the processor ignores others too), (2) no other map of the registry writing the same
entity expects its key, (3) its key is not the one a source row outside the map's filter would
produce (that source row left the map's scope, and its target row with it), and (4) for a
company-specific target (its key holds the target's company column beside other fields), its
company is one of the companies the map's source rows map to: a company the map has no source
rows in is not synced by it. A map whose key *is* the company (legal entities) has no company
scope: every company in the target counts. (5) It meets the map's declared ``target_scope``
conditions: a target may hold rows of its own no map writes (Finance's shared categories,
Dataverse accounts that are vendors), which only the map's declaration can tell apart.

Reading (`ApiTables`) pages with ``Prefer: odata.maxpagesize`` and follows ``@odata.nextLink``
(Dataverse's ``$skiptoken``, Finance's ``$skip``), only on the configured API's origin and path;
Finance is read with ``cross-company=true``. A server that cannot be reached, refused
credentials (`dualwrite.apiclient.ApiError`) or an unreadable answer (`ReadFailed`) is the
command's exit 2.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx

from connectors.common.auth import ApiOrigin, ForeignOrigin
from connectors.dataverse.client import API_PATH as DATAVERSE_PATH
from connectors.finance.client import key_string, parse_metadata_keys
from dualwrite.apiclient import ApiSession, ApiUnreachable, CredentialsRefused, checked_request
from dualwrite.settings import ApiSettings, Settings
from streams.maps import MapRegistry
from streams.maps.model import FieldMap, TableMap
from streams.pending import record_ref, split_record_ref
from streams.transform import (
    Filtered,
    Mapped,
    NeedFacts,
    TransformError,
    normalize,
    observed_fields,
    transform,
    written_back_onto_source,
)
from topics import System, target_key

__all__ = [
    "ApiTables",
    "ApiUnreachable",
    "CredentialsRefused",
    "Difference",
    "Expectation",
    "Facts",
    "MapReport",
    "ReadFailed",
    "ReconcileError",
    "Tables",
    "Unresolved",
    "api_sessions",
    "compare",
    "expect",
    "reconcile",
    "report_json",
]

Row = Mapping[str, Any]


class ReconcileError(Exception):
    """Reconcile could not read what it must compare: one line saying what to do next."""


class ReadFailed(ReconcileError):
    """An API answered, but not with the rows asked for."""


class Tables(Protocol):
    """Rows of both systems, as reconcile reads them (an API reader, or rows built by a test)."""

    def rows(self, system: System, table: str) -> Sequence[Row]: ...

    def key_fields(self, table: str) -> tuple[str, ...]:
        """A Finance entity's key fields in ``$metadata`` order (they make its record id)."""
        ...


def observed_key(m: TableMap, row: Row) -> str | None:
    """The record key of a target row as the processor reads it (`streams.route`), each value
    normalized as its key field's kind; None when a key field is unset or not a scalar."""
    key: dict[str, Any] = {}
    for f in m.key:
        value = row.get(f.read_name)
        if value is None or value == "" or isinstance(value, dict | list):
            return None
        try:
            key[f.target] = normalize(f.kind, value)
        except TransformError:
            return None
    return target_key(m.target.table, key)


class Facts(Mapping[str, Mapping[str, Any]]):
    """The worker's facts, answered from the rows read instead of from Kafka.

    A fact that does not resolve is absent (`transform` then answers `NeedFacts` naming it).
    Lookups of lookups (a task's project key needs the project's company row) resolve the same
    way; a cycle resolves to absent rather than recursing for ever.
    """

    def __init__(self, registry: MapRegistry, tables: Tables) -> None:
        self.registry = registry
        self.tables = tables
        self._memo: dict[str, Mapping[str, Any] | None] = {}
        self._by_id: dict[tuple[System, str], dict[str, Row]] = {}
        self._present: dict[str, dict[str, Any]] | None = None
        self._resolving: set[str] = set()
        self._members: dict[str, list[str]] = {}
        self._id_columns: dict[tuple[System, str], tuple[str, ...]] = {}

    def record_id(self, system: System, table: str, row: Row) -> str | None:
        """The id a source gives this row on its CDC topic (what lookups and ``key:`` facts
        name): the declared primary key for Dataverse, the entity key joined by ``|`` (in
        ``$metadata`` order) for Finance."""
        if (system, table) not in self._id_columns:
            self._id_columns[system, table] = (
                tuple(filter(None, [self.registry.endpoint(system, table).primary_key]))
                if system == "dataverse" else self.tables.key_fields(table))
        columns = self._id_columns[system, table]
        if not columns or any(row.get(c) is None for c in columns):
            return None
        if system == "dataverse":
            return str(row[columns[0]])
        return key_string({c: row[c] for c in columns}, columns)

    def by_id(self, system: System, table: str) -> dict[str, Row]:
        """Rows of a source table by record id, read once."""
        if (system, table) not in self._by_id:
            index: dict[str, Row] = {}
            for row in self.tables.rows(system, table):
                rid = self.record_id(system, table, row)
                if rid is not None:
                    index.setdefault(rid, row)
            self._by_id[system, table] = index
        return self._by_id[system, table]

    def __getitem__(self, key: str) -> Mapping[str, Any]:
        if key not in self._memo:
            if key in self._resolving:
                raise KeyError(key)
            self._resolving.add(key)
            try:
                self._memo[key] = self._resolve(key)
            finally:
                self._resolving.discard(key)
        value = self._memo[key]
        if value is None:
            raise KeyError(key)
        return value

    def __iter__(self) -> Iterator[str]:
        return iter([k for k, v in self._memo.items() if v is not None])

    def __len__(self) -> int:
        return sum(1 for v in self._memo.values() if v is not None)

    def _resolve(self, key: str) -> Mapping[str, Any] | None:
        kind, _, rest = key.partition(":")
        if kind == "row":
            system, _, rest = rest.partition(":")
            table, _, rid = rest.partition(":")
            if system not in ("dataverse", "finance"):
                return None
            owner: System = "dataverse" if system == "dataverse" else "finance"
            row = self.by_id(owner, table).get(rid)
            # The worker indexes only the columns some lookup reads (`MapRegistry.indexed`).
            return None if row is None else {c: row.get(c) for c in self.registry.indexed(owner, table)}
        if kind == "key":
            name, _, ref = rest.partition(":")
            if name not in self.registry:
                return None
            m = self.registry[name]
            rid, member = split_record_ref(ref, m.fan_out is not None)
            source = self.by_id(m.source.system, m.source.table).get(rid)
            if source is None:
                return None
            row = dict(self.copies(m, rid, source)).get(ref) if member is not None else source
            if row is None:
                return None
            try:
                result = transform(m, row, self, settled=True)
            except TransformError:
                return None
            return dict(result.key) if isinstance(result, Mapped) else None
        if kind == "present":
            return self._presence().get(rest)
        return None

    def members(self, m: TableMap) -> list[str]:
        """A fan-out map's members as the worker names them (`streams.route`)."""
        assert m.fan_out is not None
        if m.name in self._members:
            return self._members[m.name]
        out = self._members[m.name] = []
        for row in self.tables.rows(m.fan_out.system, m.fan_out.table):
            member = row.get(m.fan_out.column)
            if member is None or member == "" or isinstance(member, dict | list | bool):
                continue
            if str(member) not in out:
                out.append(str(member))
        return out

    def copies(self, m: TableMap, source_id: str | None, row: Row) -> list[tuple[str | None, Row]]:
        """The rows the worker writes for one source row, with the record ref its key fact
        names: the row itself, or for a fan-out map one copy per member (`Pending.for_member`)."""
        if m.fan_out is None:
            return [(source_id, row)]
        fill = m.fan_out.fill
        return [(record_ref(source_id or "", member), {**row, fill: member}) for member in self.members(m)]

    def _presence(self) -> dict[str, dict[str, Any]]:
        """Record key -> ``{"target_id": ...}`` for every target row of every map's entity that a
        ``present`` lookup names (what the worker learns from the targets' own feeds)."""
        if self._present is None:
            wanted = {lk.table for m in self.registry.maps for lk in m.lookups if lk.ref == "present"}
            self._present = {}
            for m in self.registry.maps:
                if m.target.table not in wanted:
                    continue
                for row in self.tables.rows(m.target.system, m.target.table):
                    rkey = observed_key(m, row)
                    if rkey is not None:
                        tid = row.get(m.target_id_column) if m.target_id_column else None
                        self._present.setdefault(rkey, {"target_id": None if tid is None else str(tid)})
            # Tables no map writes (a Finance expense line's Dataverse project): the worker
            # learns them from their own feed, keyed as `MapRegistry.presence_keys` says.
            lookups = {(lk.system, lk.table) for m in self.registry.maps for lk in m.lookups
                       if lk.ref == "present"}
            for system, table in sorted(lookups):
                for fields in self.registry.presence_keys(system, table):
                    for row in self.tables.rows(system, table):
                        values = {f: row.get(f) for f in fields}
                        if all(v is not None and v != "" for v in values.values()):
                            self._present.setdefault(target_key(table, values), {
                                "target_id": self.record_id(system, table, row)})
        return self._present


@dataclass(frozen=True)
class Unresolved:
    """A source row the target cannot hold: the facts it lacks, or why the map refuses it."""

    source_id: str | None
    missing: tuple[str, ...] = ()
    reason: str = ""


@dataclass
class Expectation:
    """What one map's target must hold, computed from its source rows."""

    rows: dict[str, tuple[str | None, Mapped]] = field(default_factory=dict)  # record key -> (source id, mapped)
    sources: dict[str, Row] = field(default_factory=dict)  # record key -> source row (write-back)
    unresolved: list[Unresolved] = field(default_factory=list)
    out_of_filter: set[str] = field(default_factory=set)  # keys of source rows the filter refuses
    companies: set[Any] = field(default_factory=set)
    filtered: int = 0


def _company_field(m: TableMap) -> FieldMap | None:
    """The key field holding the target's company, when the key has other fields beside it."""
    column = m.target.company or m.target.company_lookup
    if column is None or len(m.key) < 2:
        return None
    return next((f for f in m.key if f.read_name == column), None)


def _ignoring_filter(unfiltered: TableMap | None, row: Row, facts: Facts) -> Mapped | None:
    """What a row the filter refuses would map to, if it can be mapped at all."""
    if unfiltered is None:
        return None
    try:
        result = transform(unfiltered, row, facts, settled=True)
    except TransformError:
        return None
    return result if isinstance(result, Mapped) else None


def expect(m: TableMap, source_rows: Sequence[Row], facts: Facts) -> Expectation:
    """Transform every source row of ``m`` as the processor would (pure, given the facts)."""
    out = Expectation()
    company = _company_field(m)
    unfiltered = m.model_copy(update={"filter": ()}) if m.filter else None
    for source_row in source_rows:
        source_id = facts.record_id(m.source.system, m.source.table, source_row)
        for sid, row in facts.copies(m, source_id, source_row):
            _expect_row(m, sid, row, facts, out, unfiltered, company)
    return out


def _expect_row(m: TableMap, sid: str | None, row: Row, facts: Facts, out: Expectation,
                unfiltered: TableMap | None, company: FieldMap | None) -> None:
    try:
        result = transform(m, row, facts, settled=True)
    except TransformError as exc:
        out.unresolved.append(Unresolved(sid, reason=f"map refuses the row: {exc}"))
        return
    if isinstance(result, Filtered):
        out.filtered += 1
        would = _ignoring_filter(unfiltered, row, facts)
        if would is not None:  # a target row at this key left the map's scope with it
            out.out_of_filter.add(would.record_key)
        return
    if isinstance(result, NeedFacts):
        out.unresolved.append(Unresolved(sid, missing=result.keys, reason="lookup not found"))
        return
    rkey = result.record_key
    if rkey in out.rows:
        first = out.rows[rkey][0]
        out.unresolved.append(Unresolved(sid, reason=f"same target key {rkey} as source row {first}"))
        return
    out.rows[rkey] = (sid, result)
    if m.write_back:
        out.sources[rkey] = row
    if company is not None:
        out.companies.add(result.key.get(company.target))


@dataclass(frozen=True)
class Difference:
    key: str
    source_id: str | None
    fields: dict[str, tuple[Any, Any]]  # field -> (expected, actual)


@dataclass
class MapReport:
    """One map's comparison: record keys per outcome."""

    map: str
    source: str
    target: str
    in_sync: list[str] = field(default_factory=list)
    missing: list[tuple[str, str | None]] = field(default_factory=list)  # (key, source id)
    different: list[Difference] = field(default_factory=list)
    extra: list[tuple[str, str | None]] = field(default_factory=list)  # (key, target id)
    unresolved: list[Unresolved] = field(default_factory=list)
    filtered: int = 0

    @property
    def drift(self) -> bool:
        return bool(self.missing or self.different or self.extra or self.unresolved)

    def counts(self) -> dict[str, int]:
        return {"in_sync": len(self.in_sync), "missing": len(self.missing),
                "different": len(self.different), "extra": len(self.extra),
                "unresolved": len(self.unresolved), "filtered": self.filtered}


def _same(expected: Any, actual: Any) -> bool:
    """Equal values; null and "" are one (Finance has no null strings); True is not 1."""
    if expected in (None, "") and actual in (None, ""):
        return True
    if isinstance(expected, bool) or isinstance(actual, bool):
        return expected is actual
    return bool(expected == actual)


def _readable(m: TableMap, row: Row) -> dict[str, Any]:
    """The row's mapped fields in the readable view; a value its kind cannot read (a date that
    is not one) is compared as it is, and only that field differs."""
    try:
        return observed_fields(m, row)
    except TransformError:
        out: dict[str, Any] = {}
        for name in observed_fields(m, {}):
            try:
                out[name] = observed_fields(m, {name: row.get(name)})[name]
            except TransformError:
                out[name] = row.get(name)
        return out


def _unwritten_back(m: TableMap, target_row: Row, source_row: Row) -> dict[str, tuple[Any, Any]]:
    """Values the target filled (``write_back``: a posted actual's voucher) that its source row
    does not hold, by source column: the other direction of the same map. A field the target
    has not filled yet expects nothing."""
    try:
        back = written_back_onto_source(m, target_row)
    except TransformError as exc:
        return {"write_back": (None, str(exc))}
    kinds = {f.source or f.target: f.kind for f in m.write_back}
    out: dict[str, tuple[Any, Any]] = {}
    for column, value in back.items():
        if value in (None, ""):
            continue
        try:
            held = normalize(kinds[column], source_row.get(column))
        except TransformError:
            held = source_row.get(column)
        if not _same(value, held):
            out[column] = (value, held)
    return out


def compare(m: TableMap, expected: Expectation, target_rows: Sequence[Row],
            claimed: Collection[str] = ()) -> MapReport:
    """Compare ``expected`` with the target's rows; ``claimed`` holds the keys other maps writing
    the same entity expect (not extra here)."""
    report = MapReport(m.name, f"{m.source.system} {m.source.table}", f"{m.target.system} {m.target.table}",
                       unresolved=list(expected.unresolved), filtered=expected.filtered)
    company = _company_field(m)
    seen: dict[str, Row] = {}
    for row in target_rows:
        rkey = observed_key(m, row)
        if rkey is None or rkey in seen:
            continue
        seen[rkey] = row
        if rkey in expected.rows or rkey in claimed or rkey in expected.out_of_filter:
            continue
        if company is not None and normalize(company.kind, row.get(company.read_name)) not in expected.companies:
            continue
        if not all(c.holds(row) for c in m.target_scope):
            continue
        tid = row.get(m.target_id_column) if m.target_id_column else None
        report.extra.append((rkey, None if tid is None else str(tid)))
    for rkey, (sid, mapped) in expected.rows.items():
        found = seen.get(rkey)
        if found is None:
            report.missing.append((rkey, sid))
            continue
        actual = _readable(m, found)
        wrong = {name: (value, actual.get(name)) for name, value in mapped.readable.items()
                 if not _same(value, actual.get(name))}
        wrong.update(_unwritten_back(m, found, expected.sources.get(rkey, {})))
        if wrong:
            report.different.append(Difference(rkey, sid, wrong))
        else:
            report.in_sync.append(rkey)
    return report


def _sharing_target(registry: MapRegistry, m: TableMap) -> list[TableMap]:
    return [o for o in registry.targeting(m.target.system, m.target.table) if o.name != m.name]


def reconcile(registry: MapRegistry, tables: Tables, names: Sequence[str] | None = None) -> list[MapReport]:
    """Every named map (default: all) of ``registry`` compared, in registry order. Maps sharing a
    target entity with a named one are computed too, so their rows are not taken for extras."""
    selected = [m for m in registry.maps if not names or m.name in names]
    facts = Facts(registry, tables)
    expectations: dict[str, Expectation] = {}

    def expectation(m: TableMap) -> Expectation:
        if m.name not in expectations:
            expectations[m.name] = expect(m, tables.rows(m.source.system, m.source.table), facts)
        return expectations[m.name]

    reports = []
    for m in selected:
        claimed: set[str] = set()
        for other in _sharing_target(registry, m):
            claimed.update(expectation(other).rows)
        reports.append(compare(m, expectation(m), tables.rows(m.target.system, m.target.table), claimed))
    return reports


def report_json(reports: Sequence[MapReport]) -> dict[str, Any]:
    """The full report: counts per map, and the keys of every row out of sync."""
    return {
        "in_sync": not any(r.drift for r in reports),
        "maps": [{
            "map": r.map, "source": r.source, "target": r.target, "in_sync": not r.drift,
            "counts": r.counts(),
            "missing": [{"key": k, "source_id": s} for k, s in r.missing],
            "different": [{"key": d.key, "source_id": d.source_id,
                           "fields": {n: {"expected": e, "actual": a} for n, (e, a) in d.fields.items()}}
                          for d in r.different],
            "extra": [{"key": k, "target_id": t} for k, t in r.extra],
            "unresolved": [{"source_id": u.source_id, "missing": list(u.missing), "reason": u.reason}
                           for u in r.unresolved],
        } for r in reports],
    }


# -- reading through the APIs -------------------------------------------------------------------

FINANCE_PATH = "/data"
OnPage = Callable[[System, str, int], None]


def _session(api: ApiSettings, path: str) -> ApiSession:
    return ApiSession(api.url.rstrip("/") + path, api.token_url, api.client_id, api.client_secret, api.scope)


def api_sessions(settings: Settings) -> dict[System, ApiSession]:
    """A session per API with the sinks' identity (``CLIENT_ID``/``CLIENT_SECRET``)."""
    return {"dataverse": _session(settings.dataverse, DATAVERSE_PATH),
            "finance": _session(settings.finance, FINANCE_PATH)}


class ApiTables:
    """`Tables` read through the APIs, each table once, every page of it."""

    def __init__(self, sessions: Mapping[System, ApiSession], page_size: int = 5000,
                 on_page: OnPage | None = None) -> None:
        self.sessions = sessions
        self.page_size = page_size
        self.on_page = on_page
        self._rows: dict[tuple[System, str], list[Row]] = {}
        self._keys: dict[str, tuple[str, ...]] | None = None

    def rows(self, system: System, table: str) -> Sequence[Row]:
        if (system, table) not in self._rows:
            self._rows[system, table] = self._read(system, table)
        return self._rows[system, table]

    def key_fields(self, table: str) -> tuple[str, ...]:
        if self._keys is None:
            resp = self._get("finance", "$metadata", None, {"Accept": "application/xml"})
            try:
                self._keys = parse_metadata_keys(resp.content)
            except Exception as exc:  # any unreadable CSDL is the same problem
                raise ReadFailed(f"finance $metadata is not readable CSDL ({type(exc).__name__})") from None
        return self._keys.get(table, ())

    def _get(self, system: System, url: str, params: dict[str, str] | None,
             headers: dict[str, str]) -> httpx.Response:
        resp = checked_request(self.sessions[system], system, "GET", url, params=params, headers=headers)
        if resp.status_code != 200:
            raise ReadFailed(f"{system} GET {url.split('?')[0][:120]} answered HTTP {resp.status_code}: "
                             f"{' '.join(resp.text[:200].split())}")
        return resp

    def _read(self, system: System, table: str) -> list[Row]:
        origin = ApiOrigin.of(self.sessions[system].api_url)
        url = table
        params: dict[str, str] | None = {"cross-company": "true"} if system == "finance" else None
        headers = {"Prefer": f"odata.maxpagesize={self.page_size}"}
        rows: list[Row] = []
        while True:
            resp = self._get(system, url, params, headers)
            try:
                body = resp.json()
            except ValueError:
                body = None
            page = body.get("value") if isinstance(body, dict) else None
            if not isinstance(body, dict) or not isinstance(page, list):
                raise ReadFailed(f"{system} GET {table}: the answer is not a JSON object with a "
                                 "'value' array")
            rows.extend(r for r in page if isinstance(r, dict))
            if self.on_page is not None:
                self.on_page(system, table, len(page))
            link = body.get("@odata.nextLink")
            if not link:
                return rows
            try:
                url = origin.check_link(str(link), f"{system} GET {table}: @odata.nextLink")
            except ForeignOrigin as exc:
                raise ReadFailed(str(exc)) from None
            params = None

    def close(self) -> None:
        for session in self.sessions.values():
            session.close()
