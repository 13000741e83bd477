"""Finance writes: PATCH is update-only in FO, so upserts are PATCH-or-POST.

- Update: ``PATCH /data/<Entity>(<every key field>)``; 404 means the row does not exist yet.
- Create: ``POST /data/<Entity>`` with the key fields merged into the body; a duplicate key is a
  400 ``WriteFailed`` ("...already exists") or 409.
- Which to try first: PATCH when we have applied this record before (it exists), else POST. A
  miss flips the request (PATCH 404 -> POST, POST duplicate -> PATCH) and the unit is re-sent;
  inside a change set the failing request is named by its Content-ID, and the change set was
  rolled back, so re-sending the whole unit is safe.
- ``Prefer: return=representation`` on both, so the answer carries ``RecId`` (the Applied
  ack's ``target_id``) and ``@odata.etag``.
- ``DELETE``: 204; 404 = already gone = success.
- Keyed URLs carry ``?cross-company=true``: FO resolves them in the caller's default company
  otherwise, so another company's row would be "not found".
- An update-only command (a two-way edit flowing back) is only ever a PATCH: a 404 is
  dead-lettered, never turned into a POST that would create a half-filled row.
- ``DELETE`` refused because other rows still reference the row ("The record is referenced by
  ...", a 400 ``WriteFailed``): the deletes of the referencing rows (a child task's before its
  parent's) are on their way, in this window or a later one, maybe behind this very delete on
  its partition. The delete is `Deferred`: held for a later window (uncommitted) while the sink
  goes on, and tried again up to ``REFERENCED_RETRIES`` times before it is dead-lettered with
  Finance's message. The processor does not order deletes of related rows yet; this keeps a
  parent's delete from losing that race.
- The other side of that race: a create or update refused because a row it references is not in
  Finance ("... is not found in the relating table", a parent task deleted from another
  partition first) is held the same way: the record's own delete is on its way and supersedes
  it; a reference that never comes back is dead-lettered after the same number of tries.
"""

from __future__ import annotations

from typing import Any

from connectors.common.batch import BatchOp, BatchResult
from connectors.common.errors import Deferred
from connectors.common.http import ApiClient
from connectors.common.sinkstate import Write
from connectors.common.writer import Again, Done, Judgement, ODataWriter
from connectors.finance.client import entity_key

__all__ = ["REFERENCED_RETRIES", "FinanceWriter", "is_duplicate", "is_missing_reference", "is_referenced"]

RETURN_ROW = (("Prefer", "return=representation"),)
_DUPLICATE_MARKERS = ("already exists", "duplicate", "cannot create a record")
_REFERENCED_MARKER = "is referenced by"
_MISSING_MARKER = "is not found in the relating table"
# Tries of a held write, one per window at the sink's retry pause (1 s): about two minutes, so
# a worker restarting between a parent's delete and its children's (chaos runs: 30-40 s) is
# covered; 10 tries (10 s) dead-lettered parent deletes in a run with two workers.
REFERENCED_RETRIES = 120


def is_duplicate(result: BatchResult) -> bool:
    if result.status == 409:
        return True
    if result.status != 400:
        return False
    text = result.body.decode("utf-8", "replace").lower()
    return any(marker in text for marker in _DUPLICATE_MARKERS)


def is_referenced(result: BatchResult) -> bool:
    """A delete refused because other rows still point at the row."""
    return result.status == 400 and _REFERENCED_MARKER in result.body.decode("utf-8", "replace").lower()


def is_missing_reference(result: BatchResult) -> bool:
    """A write refused because a row it references is not there ("The value 'DW-1, 2' in field
    'ProjectId, ParentTask' is not found in the relating table")."""
    return result.status == 400 and _MISSING_MARKER in result.body.decode("utf-8", "replace").lower()


class FinanceWriter(ODataWriter):
    def __init__(self, api: ApiClient, service_root: str, batch_size: int = 1) -> None:
        super().__init__(api, service_root, batch_size)
        self._held: dict[str, int] = {}  # command id -> tries of a write held for another's sake

    def held_again(self, write: Write, result: BatchResult, why: str) -> Again | None:
        """Again, for a later window, while the write still has tries left; None once they are
        used (then it is dead-lettered with Finance's message)."""
        cid = write.command.command_id
        tries = self._held.pop(cid, 0) + 1
        if tries > REFERENCED_RETRIES:
            return None
        self._held[cid] = tries
        return Again(write, Deferred(f"{why} (try {tries} of {REFERENCED_RETRIES})", status=result.status))

    def keyed(self, entity: str, key: dict[str, Any]) -> str:
        """A row's URL. FO resolves a keyed URL in the caller's default company unless
        ``cross-company=true``: without it, a PATCH to another company's row is a 404 and a
        DELETE of it a 404 taken for "already gone", so demf's rows were never updated or
        deleted by a usmf caller."""
        return self.url(f"{entity_key(entity, key)}?cross-company=true")

    def _patch(self, write: Write) -> BatchOp:
        c = write.command
        # Key fields live in the URL; FO refuses a body that would change them.
        body = {k: v for k, v in c.fields.items() if k not in c.key}
        return BatchOp("PATCH", self.keyed(c.entity, dict(c.key)), body, RETURN_ROW)

    def _post(self, write: Write) -> BatchOp:
        c = write.command
        return BatchOp("POST", self.url(c.entity), {**c.fields, **c.key}, RETURN_ROW)

    def plan(self, write: Write) -> BatchOp:
        command = write.command
        if command.op == "delete":
            return BatchOp("DELETE", self.keyed(command.entity, dict(command.key)))
        exists = write.prior is not None and write.prior.op == "upsert"
        return self._patch(write) if exists or command.update_only else self._post(write)

    def judge(self, write: Write, op: BatchOp, result: BatchResult) -> Judgement:
        status = result.status
        entity = write.command.entity
        if op.method == "DELETE" and is_referenced(result):
            again = self.held_again(write, result, f"DELETE {entity}: still referenced; the "
                                    "referencing rows' deletes may be on their way")
            if again is not None:
                return again
        elif op.method in ("POST", "PATCH") and is_missing_reference(result):
            # The row it references was deleted meanwhile (a parent task's delete written from
            # another partition before this child's create): the child's own delete follows.
            again = self.held_again(write, result, f"{op.method} {entity}: a row it references is "
                                    "not in Finance; its own delete may be on its way")
            if again is not None:
                return again
        else:
            self._held.pop(write.command.command_id, None)
        if 200 <= status < 300:
            etag, target_id = result.headers.get("etag"), None
            body: Any = None
            if result.body.strip():
                try:
                    body = result.json()
                except ValueError:
                    body = None
            if isinstance(body, dict):
                etag = body.get("@odata.etag", etag)
                target_id = str(body["RecId"]) if body.get("RecId") is not None else None
            return Done(write, etag, target_id)
        if op.method == "DELETE" and status == 404:
            return Done(write)
        if op.method == "PATCH" and status == 404:
            if write.command.update_only:
                return self.rejected(write, result, f"update-only {write.command.entity}: the row "
                                     "does not exist in Finance (a two-way edit never creates one)")
            return self._post(write)
        if op.method == "POST" and is_duplicate(result):
            return self._patch(write)
        again = self.transient(write, result)
        if again is not None:
            return again
        return self.rejected(write, result, f"{op.method} {write.command.entity} -> HTTP {status}")
