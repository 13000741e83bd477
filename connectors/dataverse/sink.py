"""Dataverse writes: upsert by alternate key (``PATCH``), delete (``DELETE``), in ``$batch``.

- ``PATCH /<set>(<alternate key>)`` without ``If-Match`` is an upsert: 204 (or 201 when
  created); the row's address comes back in ``OData-EntityId`` (``.../<set>(<guid>)``) and, when
  the server sends one, the new version in ``ETag``.
- An update-only command (a two-way edit flowing back) sends ``If-Match: *``, Dataverse's way to
  forbid the create: a missing row answers 404 and the command is dead-lettered, never a
  half-filled new row.
- ``DELETE /<set>(<key>)``: 204; 404 means already gone, which is what we wanted.
- Fields may carry ``x@odata.bind`` lookups; we pass them through untouched.
- 412 cannot happen on our upserts; if a proxy or plug-in answers it anyway it is permanent for
  this command (dead-lettered with the body).
"""

from __future__ import annotations

import re

from connectors.common.batch import BatchOp, BatchResult
from connectors.common.sinkstate import Write
from connectors.common.writer import Done, Judgement, ODataWriter
from connectors.dataverse.client import entity_key

__all__ = ["DataverseWriter", "entity_id"]

UPDATE_ONLY = (("If-Match", "*"),)
_ENTITY_ID = re.compile(r"\(([0-9a-fA-F-]{36})\)\s*$")


def entity_id(header: str | None) -> str | None:
    """The GUID at the end of an ``OData-EntityId`` URL."""
    if not header:
        return None
    match = _ENTITY_ID.search(header)
    return match.group(1) if match else None


class DataverseWriter(ODataWriter):
    def plan(self, write: Write) -> BatchOp:
        command = write.command
        url = self.url(entity_key(command.entity, dict(command.key)))
        if command.op == "delete":
            return BatchOp("DELETE", url)
        if command.update_only:
            return BatchOp("PATCH", url, dict(command.fields), UPDATE_ONLY)
        return BatchOp("PATCH", url, dict(command.fields))

    def judge(self, write: Write, op: BatchOp, result: BatchResult) -> Judgement:
        status = result.status
        if 200 <= status < 300:
            headers = {k.lower(): v for k, v in result.headers.items()}
            etag = headers.get("etag")
            target_id = entity_id(headers.get("odata-entityid"))
            if etag is None and result.body.strip():
                try:
                    body = result.json()
                    etag = body.get("@odata.etag") if isinstance(body, dict) else None
                except ValueError:
                    etag = None
            return Done(write, etag, target_id)
        if op.method == "DELETE" and status == 404:
            return Done(write)  # already gone: the delete's effect holds
        if write.command.update_only and status in (404, 412):
            return self.rejected(write, result, f"update-only {write.command.entity}: the row does "
                                 "not exist in Dataverse (a two-way edit never creates one)")
        again = self.transient(write, result)
        if again is not None:
            return again
        return self.rejected(write, result, f"{op.method} {write.command.entity} -> HTTP {status}")
