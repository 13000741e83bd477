"""``POST /api/data/v9.2/$batch``: run the parts in order through :class:`DataverseApi`.

A change set is one SQLite transaction (one transaction id in the change log): the first
failing request rolls all of it back and its error answers for the whole change set. Outside
change sets each request commits on its own; the first failure ends the batch unless the
client sent ``Prefer: odata.continue-on-error``. A batch of more requests than
``EmulatorConfig.max_batch_requests`` (default 1,000, Dataverse's documented limit) is refused
whole with 400. Part URLs are parsed exactly like plain request
targets (``messages.api_request``); a part whose request line or headers cannot be read (a line
break injected through a key, say) answers 400 on its own.
"""

from __future__ import annotations

from emulators.common.batch import (
    BatchRequest,
    BatchResponse,
    BatchResponsePart,
    ChangeSet,
    ChangeSetResponse,
    count_requests,
    format_batch,
    parse_batch,
)
from emulators.common.errors import ODataError
from emulators.dataverse.api import DataverseApi
from emulators.dataverse.messages import ApiRequest, ApiResponse, api_request


def _sub_request(outer: ApiRequest, part: BatchRequest, content_ids: dict[str, str]) -> ApiRequest:
    """The part as a request, its URL parsed like a plain request's; an unreadable part is 400."""
    if part.error is not None:
        raise ODataError(400, "0x80048d19", part.error)
    return api_request(part.method, part.url, part.headers, part.body, outer.principal,
                       outer.base, content_ids)


def _as_part(response: ApiResponse, content_id: str | None) -> BatchResponse:
    return BatchResponse(response.status, response.headers, response.body, content_id)


def _remember(content_ids: dict[str, str], part: BatchRequest, response: ApiResponse,
              base: str) -> None:
    entity_id = response.headers.get("OData-EntityId")
    if part.content_id is not None and entity_id is not None:
        content_ids[part.content_id] = entity_id.removeprefix(base)


def run_batch(api: DataverseApi, req: ApiRequest, max_requests: int) -> ApiResponse:
    """The batch's answer; more than ``max_requests`` requests (``EmulatorConfig.max_batch_requests``,
    Dataverse's documented 1,000) are refused whole, before any of them runs."""
    parts = parse_batch(req.body, req.headers.get("content-type", ""))
    if count_requests(parts) > max_requests:
        raise ODataError(400, "0x8006088a", "The number of requests in the batch exceeds the "
                         f"limit of {max_requests}.")
    keep_going = "odata.continue-on-error" in req.prefers()
    answers: list[BatchResponsePart] = []
    content_ids: dict[str, str] = {}
    for part in parts:
        if isinstance(part, ChangeSet):
            failed = _run_change_set(api, req, part, answers)
        else:
            try:
                response = api.execute(_sub_request(req, part, content_ids))
            except ODataError as exc:
                response = ApiResponse.error(exc)
            _remember(content_ids, part, response, req.base)
            answers.append(_as_part(response, part.content_id))
            failed = response.status >= 400
        if failed and not keep_going:
            break
    body, content_type = format_batch(answers)
    return ApiResponse(200, {"Content-Type": content_type, "OData-Version": "4.0"}, body)


def _run_change_set(api: DataverseApi, req: ApiRequest, change_set: ChangeSet,
                    answers: list[BatchResponsePart]) -> bool:
    """Run a change set atomically; returns True when it failed (and was rolled back)."""
    content_ids: dict[str, str] = {}  # Content-IDs are scoped to their change set
    results: list[BatchResponse] = []
    current: BatchRequest | None = None
    try:
        with api.store.transaction(req.principal):
            for part in change_set.requests:
                current = part
                response = api.execute(_sub_request(req, part, content_ids))
                _remember(content_ids, part, response, req.base)
                results.append(_as_part(response, part.content_id))
    except ODataError as exc:
        answers.append(_as_part(ApiResponse.error(exc), current.content_id if current else None))
        return True
    answers.append(ChangeSetResponse(results))
    return False
