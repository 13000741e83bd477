"""A local stand-in for the Dynamics 365 Finance OData service (``/data/<entity>``).

Entry point: ``emulators.finance.app.create_app(cfg) -> Starlette``; run it with
``dualwrite emulator finance [--seed] [--client-id ID] [--company usmf]`` (the client secret from
``$DUALWRITE_EMULATOR_CLIENT_SECRET`` or ``--client-secret-file``).

What a connector needs (everything else is standard FO OData):

- Auth: ``POST /{tenant}/oauth2/v2.0/token`` (client credentials, form-encoded) ->
  ``{"access_token", "expires_in", ...}``; send ``Authorization: Bearer <token>``; 401 otherwise.
- Entities: ``/data/<Collection>``, keys ``(dataAreaId='usmf',ProjectId='P-1')`` with every key
  field; collections answer the default company unless ``?cross-company=true`` (keyed URLs into
  another company too). Catalogue and field names: ``entities.py``. Key values are OData
  literals percent-encoded as UTF-8 (``%2F`` is a key ``/``; a raw ``/`` is a path separator),
  read alike in plain requests and ``$batch`` parts; ``Location`` sends them encoded.
- Rows carry ``RecId``, ``RecVersion`` and ``ModifiedDateTime``; ``@odata.etag`` is
  ``W/"<RecVersion>"``; ``RecVersion`` equals the change-feed version of the row's last change.
  Enums are symbol strings (NoYes fields are ``"Yes"``/``"No"``); dates are
  ``YYYY-MM-DDT12:00:00Z``.
- Writes: POST 201 (+ ``Location``), PATCH/PUT update-only (404 if missing: no upsert),
  DELETE 204, ``If-Match`` -> 412 when stale; ``$batch`` with atomic change sets
  (``batching.py``).
- Change feed: ``GET /data/ChangeFeed?since=&entities=&top=`` (``feed.py``).
- FO entity logic on writes (shared categories, forecasts, fixed-price estimate projects):
  ``hooks.py``. Business actions (import from staging, posting): ``actions.py``.
- Error codes: ``errors.py``. Throttling: 429 + ``Retry-After`` with FO's "high resource
  utilization" message. Faults: ``/_admin/faults`` (loopback clients only).
"""
