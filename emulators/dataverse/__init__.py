"""A local stand-in for the Dataverse Web API (Project Operations tables) over SQLite.

Contract for connector authors (everything else follows the real Web API, see the modules):

- Service root ``/api/data/v9.2/``; tokens from ``POST /{tenant}/oauth2/v2.0/token``
  (client credentials, scope ``<anything>/.default``); ``GET WhoAmI``.
- Tables and columns: :mod:`emulators.dataverse.schema` (real entity set names; lookups are
  bound with ``<column>@odata.bind`` and read as ``_<column>_value``;
  ``transactioncurrencyid`` is a plain ISO code). Strings compare case-insensitively.
  Queries: ``$filter $select $orderby $top $count``, ``$expand`` of lookups with nested
  ``$select``; ``Prefer: odata.maxpagesize``; ``GET $metadata`` (CSDL with alternate keys).
- Change tracking extensions on delta-link entries (absent from the real service):
  ``@dualwrite.txid``, ``@dualwrite.principal``, ``@dualwrite.version``, ``@dualwrite.op``.
  Bad or expired delta tokens: 400 with code ``0x80044352``.
- Bound actions: ``msdyn_timeentries(<id>)/Microsoft.Dynamics.CRM.msdyn_ApproveTimeEntry`` and
  ``invoices(<id>)/Microsoft.Dynamics.CRM.msdyn_ConfirmInvoice``; new ``msdyn_expenses`` and
  ``msdyn_projectvendorinvoicelines`` rows are approved automatically (:mod:`.actions`).
- Error codes: 400 ``0x80040265`` business rule / "Unable to lookup <set> with values {...}";
  400 ``0x80060888`` unknown property, bad key, bad query; 400 ``0x80048d19`` bad payload;
  400 ``0x80044331`` value too long / option value out of range; 404 ``0x80040217`` row not
  found; 412 ``0x80060892`` duplicate alternate key; 412 ``0x80040237`` ``If-None-Match: *`` on
  an existing row (or a create with an existing id);
  412 ``0x80060882`` stale ``If-Match`` etag; 429 ``0x80072322`` / ``0x80072321`` /
  ``0x80072326`` service protection (requests / execution time / concurrency) with
  ``Retry-After``; 401 ``0x80072560`` missing or bad bearer token.
- Key values in URLs are percent-encoded UTF-8, decoded once, alike in plain requests, ``$batch``
  parts and ``@odata.bind``; alternate key values holding ``/ # < > * % & : \\ ? +`` are refused
  (400), as Dataverse documents that GET/PATCH by such keys do not work (:mod:`.keys`).
- ``/_admin`` answers loopback clients only; client secrets never come from the command line.
- Deterministic seed GUIDs: :func:`emulators.dataverse.seed.seed_id`.
"""

from emulators.dataverse.app import create_app
from emulators.dataverse.seed import seed_id

__all__ = ["create_app", "seed_id"]
