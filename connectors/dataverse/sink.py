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
- A key value holding one of ``/ # < > * % & : \\ ? +`` cannot address a row in a URL (Microsoft
  documents that GET and PATCH by such an alternate key do not work). Before planning, the
  writer finds that row with ``$filter`` on the key (`prepare`, one read per such write) and
  addresses it by its primary key: ``PATCH``/``DELETE set(<id>)``. A row that does not exist
  yet is created with ``PATCH set(<new id>)`` carrying the key columns in the body (a lookup
  part of the key must be bound in the command's fields); a delete of a missing row addresses
  a fresh id that cannot exist (404 = already gone). A found row is written with
  ``If-Match: *``: if it vanished between the read and the write, the write is refused (and
  dead-lettered, a retry reads again) instead of re-creating it under its old id; a row created
  by someone else in that gap makes the create a duplicate-key error, also dead-lettered.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from typing import Any

from connectors.common.batch import BatchOp, BatchResult
from connectors.common.errors import Rejected
from connectors.common.http import ApiClient, rejection
from connectors.common.odata import InvalidKey, identifier
from connectors.common.sinkstate import Write
from connectors.common.writer import Done, Judgement, ODataWriter
from connectors.dataverse.client import entity_key, key_filter, primary_key, unaddressable

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
    def __init__(self, api: ApiClient, service_root: str, batch_size: int = 1,
                 primary_keys: dict[str, str] | None = None) -> None:
        super().__init__(api, service_root, batch_size)
        self.primary_keys = primary_keys or {}
        self._ids: dict[str, str | Exception | None] = {}  # command id -> found row id

    async def prepare(self, units: list[list[Write]]) -> None:
        lookups = [w for unit in units for w in unit if unaddressable(dict(w.command.key))]
        found = await asyncio.gather(*(self._find(w) for w in lookups))
        self._ids = {w.command.command_id: f for w, f in zip(lookups, found, strict=True)}

    async def _find(self, write: Write) -> str | Exception | None:
        """The primary key of the row the command's key names, None if there is none."""
        c = write.command
        try:
            pk = identifier(primary_key(c.entity, self.primary_keys), "primary key")
            response = await self.api.request(
                "GET", self.url(identifier(c.entity, "entity set")),
                params={"$filter": key_filter(dict(c.key)), "$select": pk, "$top": "2"})
            if response.status_code >= 400:
                return rejection(response, f"finding {c.entity} by its key with $filter")
            rows = response.json().get("value", [])
            if len(rows) > 1:
                return Rejected(f"{len(rows)} {c.entity} rows match one alternate key", error_class="AmbiguousKey")
            return str(uuid.UUID(str(rows[0][pk]))) if rows else None  # an id, never other URL text
        except Exception as exc:  # kept for `plan` to raise: this write fails (or waits), no other
            return exc

    def plan(self, write: Write) -> BatchOp:
        command = write.command
        if command.command_id in self._ids:
            return self._plan_by_id(write, self._ids[command.command_id])
        url = self.url(entity_key(command.entity, dict(command.key)))
        if command.op == "delete":
            return BatchOp("DELETE", url)
        if command.update_only:
            return BatchOp("PATCH", url, dict(command.fields), UPDATE_ONLY)
        return BatchOp("PATCH", url, dict(command.fields))

    def _plan_by_id(self, write: Write, found: str | Exception | None) -> BatchOp:
        """A write whose key cannot be a URL, addressed by the row id `prepare` found."""
        if isinstance(found, Exception):
            raise found
        command = write.command
        url = self.url(f"{identifier(command.entity, 'entity set')}({found or uuid.uuid4()})")
        if command.op == "delete":
            return BatchOp("DELETE", url)  # a fresh id when missing: 404, already gone
        body: dict[str, Any] = {**self._key_columns(write), **command.fields}
        if command.update_only or found is not None:
            # The row exists (or must): never let this PATCH create a row under a stale id.
            return BatchOp("PATCH", url, body, UPDATE_ONLY)
        return BatchOp("PATCH", url, body)

    @staticmethod
    def _key_columns(write: Write) -> dict[str, Any]:
        """The key as body columns: plain columns by name; a lookup part ``_x_value`` only
        through the ``x@odata.bind`` the command already carries (it names the target set)."""
        out: dict[str, Any] = {}
        for name, value in write.command.key.items():
            if name.startswith("_") and name.endswith("_value"):
                if f"{name[1:-6]}@odata.bind" not in write.command.fields:
                    raise InvalidKey(f"key part {name} needs {name[1:-6]}@odata.bind in the fields to "
                                     "create a row whose key cannot be a URL")
            else:
                out[name] = value
        return out

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
