"""``POST /data/$batch``: multipart/mixed requests run in order, change sets atomically.

- Each top-level request runs on its own (its own transaction if it writes).
- A change set runs in ONE SQLite transaction (one txid in the change feed); if any request in
  it fails, everything in it rolls back and the change set is answered by that single error
  response (OData 4.0 behaviour), carrying the failing request's Content-ID.
- ``Content-ID: n`` on a request in a change set lets later requests of the same change set
  address the created row as ``$n`` (``PATCH $1``, ``POST $1/Microsoft...Post``).
- Processing stops after the first failed part unless ``Prefer: odata.continue-on-error``.
- A batch of more requests (change sets included) than ``EmulatorConfig.max_batch_requests``
  is refused whole with 400 before any of it runs. Real Finance publishes no such limit; the
  emulator takes Dataverse's 1,000 by default so a test proves the sink never exceeds the cap it
  is configured with.
- Embedded URLs may be absolute (``http://host/data/X``), rooted (``/data/X``) or relative (``X``)
  and are parsed by the same function as a plain request's (``messages.api_request``), so a
  percent-encoded key is decoded once, alike. A part that could not be read (malformed request
  line or headers, e.g. a line break injected through a key) answers 400 on its own.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING

from emulators.common.batch import (
    BatchPart,
    BatchRequest,
    BatchResponse,
    BatchResponsePart,
    ChangeSet,
    ChangeSetResponse,
    count_requests,
)
from emulators.common.errors import ODataError, odata_error_body
from emulators.finance.errors import bad_request
from emulators.finance.messages import ApiRequest, ApiResponse, api_request

if TYPE_CHECKING:
    from emulators.finance.api import FinanceApi

__all__ = ["run_batch"]

log = logging.getLogger("emulators.finance.batch")
JSON_TYPE = "application/json; odata.metadata=minimal; charset=utf-8"


def _to_api(part: BatchRequest, principal: str, base_url: str,
            created: dict[str, str]) -> ApiRequest:
    """The part as an :class:`ApiRequest`, its URL parsed exactly like a plain request's."""
    if part.error is not None:
        raise bad_request(part.error)
    url = part.url
    if url.startswith("$"):
        ref, _, rest = url[1:].partition("/")
        ref_id, _, query_ref = ref.partition("?")
        if ref_id not in created:
            raise bad_request(f"Content-ID reference '${ref_id}' is unknown.")
        url = created[ref_id] + (f"/{rest}" if rest else "") + (f"?{query_ref}" if query_ref else "")
    return api_request(part.method, url, part.headers, part.body, principal, base_url)


def _encode(resp: ApiResponse, content_id: str | None) -> BatchResponse:
    headers = dict(resp.headers)
    body = b""
    if resp.body is not None:
        body = json.dumps(resp.body).encode()
        headers["Content-Type"] = JSON_TYPE
    elif resp.text is not None:
        body = resp.text.encode()
        headers["Content-Type"] = "text/plain"
    return BatchResponse(resp.status, headers, body, content_id)


def _error(exc: Exception, content_id: str | None) -> BatchResponse:
    if isinstance(exc, ODataError):
        status, body = exc.status, odata_error_body(exc.code, exc.message)
    else:
        log.exception("unhandled error inside $batch", exc_info=exc)
        status, body = 500, odata_error_body("InternalError", "An unexpected error occurred.")
    return BatchResponse(status, {"Content-Type": JSON_TYPE}, json.dumps(body).encode(),
                         content_id)


def _run_change_set(api: FinanceApi, cs: ChangeSet, principal: str,
                    base_url: str) -> BatchResponsePart:
    created: dict[str, str] = {}
    responses: list[BatchResponse] = []
    current: BatchRequest | None = None
    try:
        with api.store.transaction(principal):
            for current in cs.requests:
                resp = api.handle(_to_api(current, principal, base_url, created))
                location = resp.headers.get("Location")
                if current.content_id and location:
                    created[current.content_id] = location.removeprefix(base_url + "/")
                responses.append(_encode(resp, current.content_id))
    except Exception as exc:  # every failure rolls the change set back and answers once
        return _error(exc, current.content_id if current else None)
    return ChangeSetResponse(responses)


def run_batch(api: FinanceApi, parts: list[BatchPart], principal: str, base_url: str,
              continue_on_error: bool) -> list[BatchResponsePart]:
    """The answers of the parts; raises 400 for a batch above ``max_batch_requests``."""
    limit = api.cfg.max_batch_requests
    if count_requests(parts) > limit:
        raise bad_request(f"The number of requests in the batch exceeds the limit of {limit}.")
    out: list[BatchResponsePart] = []
    for part in parts:
        if isinstance(part, ChangeSet):
            result = _run_change_set(api, part, principal, base_url)
            failed = isinstance(result, BatchResponse)
        else:
            try:
                result = _encode(api.handle(_to_api(part, principal, base_url, {})),
                                 part.content_id)
            except Exception as exc:
                result = _error(exc, part.content_id)
            failed = result.status >= 400
        out.append(result)
        if failed and not continue_on_error:
            break
    return out
