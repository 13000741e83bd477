"""Change tracking: delta tokens and the change set a delta link returns.

A token is ``<version>!<issued unix time>``, the shape of real Dataverse tokens (a version
then a timestamp). Tokens carry no table: versions are global, as in Dataverse. A token older
than the configured number of days, newer than the database, or unparsable is refused with
HTTP 400 and code ``0x80044352`` ("ExpiredVersionStamp": the client must sync from scratch).

A delta window (after, upto] is fixed when the first page of a delta link is served; the
entries are derived only from the change log inside that window (one entry per row, its last
operation), so later pages are stable even while writes continue. Rows whose last operation is
a delete come last; a row created and deleted inside the window is reported as deleted.

`transaction_shape` describes the transaction behind a change (emulator extension): how many
distinct rows of each table it touched and where each row stands in it, by first change.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from emulators.common.errors import ODataError
from emulators.common.store import Change, Store

INVALID_TOKEN_CODE = "0x80044352"


@dataclass(frozen=True)
class DeltaEntry:
    row_id: str
    deleted: bool
    created: bool  # the row's first change in the window created it
    change: Change  # the row's last change in the window (gives txid, principal, version)


@dataclass(frozen=True)
class TxShape:
    rows: dict[str, int]  # entity set -> distinct rows the transaction touched
    order: dict[tuple[str, str], tuple[int, int]]  # (set, row id) -> (position, position in set)

    def marks(self, table: str, row_id: str) -> dict[str, object]:
        position, in_table = self.order.get((table, row_id), (1, 1))
        return {"@dualwrite.txorder": position, "@dualwrite.txtableorder": in_table,
                "@dualwrite.txrows": dict(self.rows)}


def transaction_shape(store: Store, txid: str) -> TxShape:
    rows: dict[str, int] = {}
    order: dict[tuple[str, str], tuple[int, int]] = {}
    for position, (table, row_id) in enumerate(store.transaction_rows(txid), start=1):
        rows[table] = rows.get(table, 0) + 1
        order[(table, row_id)] = (position, rows[table])
    return TxShape(rows, order)


def invalid_token(token: str) -> ODataError:
    return ODataError(400, INVALID_TOKEN_CODE,
                      f"ExpiredVersionStamp: the delta token '{token}' is invalid or has expired. "
                      "Perform a full synchronisation again.")


def make_token(version: int, issued: float | None = None) -> str:
    return f"{version}!{int(issued if issued is not None else time.time())}"


def parse_token(token: str, store: Store, expire_days: float, now: float | None = None) -> int:
    """The version a token stands for; raises the 400 :func:`invalid_token` otherwise."""
    version_text, sep, issued_text = token.partition("!")
    if not sep or not version_text.isdigit() or not issued_text.isdigit():
        raise invalid_token(token)
    version, issued = int(version_text), int(issued_text)
    current = time.time() if now is None else now
    if version > store.last_version() or issued > current + 60 or \
            current - issued > expire_days * 86400:
        raise invalid_token(token)
    return version


def delta_entries(store: Store, table: str, after: int, upto: int) -> list[DeltaEntry]:
    """New/updated rows (ordered by their last version) then deleted rows."""
    last: dict[str, Change] = {}
    created: set[str] = set()
    for change in store.changes_since(table, after, upto):
        if change.op == "c" and change.row_id not in last:
            created.add(change.row_id)
        last.pop(change.row_id, None)  # re-insert so dict order follows the latest version
        last[change.row_id] = change
    upserts = [DeltaEntry(rid, False, rid in created, c) for rid, c in last.items() if c.op != "d"]
    deletes = [DeltaEntry(rid, True, rid in created, c) for rid, c in last.items() if c.op == "d"]
    return upserts + deletes
