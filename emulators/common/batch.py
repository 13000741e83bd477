"""The OData ``$batch`` wire format (``multipart/mixed``), parsed and written as pure functions.

A batch body is a list of parts; each part is one embedded HTTP request or a change set (a
nested ``multipart/mixed`` with its own boundary holding only requests). The apps decide what
each request does; this module only turns bytes into :class:`BatchRequest`/:class:`ChangeSet`
and :class:`BatchResponse`/:class:`ChangeSetResponse` back into bytes, keeping order.

Parts are read as strictly as an HTTP server reads a request: the request line is
``METHOD target HTTP/x.y``, header lines end at CRLF (or LF) and are ``token: value`` with no
control character in the value (a bare CR is one). A part that breaks these rules (for example a
line break injected through a key into the request line) is not guessed at: it becomes a
:class:`BatchRequest` carrying ``error``, which the apps answer 400 for that part alone. Only a
body whose boundaries cannot be found is refused as a whole.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from http import HTTPStatus

from emulators.common.errors import ODataError

BATCH_ERROR_CODE = "0x80048d19"
_BOUNDARY = re.compile(r'boundary="?([^";]+)"?', re.IGNORECASE)
_REQUEST_LINE = re.compile(r"([A-Z]+) (\S+) HTTP/\d\.\d")
_TOKEN = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_FIELD_VALUE = re.compile(rb"[^\x00-\x08\x0a-\x1f\x7f]*")


def _bad(message: str) -> ODataError:
    return ODataError(400, BATCH_ERROR_CODE, message)


@dataclass
class BatchRequest:
    """One embedded request; ``headers`` keys are lower-case."""

    method: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    content_id: str | None = None
    error: str | None = None  # the part could not be read: answer 400 with this message


@dataclass
class ChangeSet:
    boundary: str
    requests: list[BatchRequest]


BatchPart = BatchRequest | ChangeSet


@dataclass
class BatchResponse:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    content_id: str | None = None


@dataclass
class ChangeSetResponse:
    responses: list[BatchResponse]


BatchResponsePart = BatchResponse | ChangeSetResponse


def boundary_of(content_type: str) -> str:
    if not content_type.lower().startswith("multipart/mixed"):
        raise _bad("The batch request must have a Content-Type of multipart/mixed.")
    match = _BOUNDARY.search(content_type)
    if match is None:
        raise _bad("The multipart/mixed Content-Type of the batch request has no boundary.")
    return match.group(1).strip()


def _split(body: bytes, boundary: str) -> list[bytes]:
    """The encapsulated parts between ``--boundary`` delimiters (preamble and epilogue dropped)."""
    delimiter = re.compile(rb"(?:\r?\n)?^--" + re.escape(boundary.encode()) + rb"(--)?[ \t]*(?:\r?\n|$)",
                           re.MULTILINE)
    parts: list[bytes] = []
    position: int | None = None
    closed = False
    for match in delimiter.finditer(body):
        if position is not None:
            parts.append(body[position:match.start()])
        if match.group(1):
            closed = True
            break
        position = match.end()
    if not closed:
        raise _bad(f"The batch body does not end with the closing delimiter '--{boundary}--'.")
    return parts


def _headers_and_body(block: bytes) -> tuple[dict[str, str], bytes]:
    match = re.search(rb"\r?\n\r?\n", block)
    head, body = (block[:match.start()], block[match.end():]) if match else (block, b"")
    headers: dict[str, str] = {}
    for line in re.split(rb"\r?\n", head):
        if not line:
            continue
        name, sep, value = line.partition(b":")
        if not sep or not _TOKEN.fullmatch(name) or not _FIELD_VALUE.fullmatch(value):
            raise _bad(f"Malformed header line {line[:200]!r} in the batch body.")
        headers[name.decode("ascii").lower()] = value.strip(b" \t").decode("latin-1")
    return headers, body


def _request(mime_headers: dict[str, str], http: bytes) -> BatchRequest:
    if not mime_headers.get("content-type", "").lower().startswith("application/http"):
        raise _bad("Each batch operation must have a Content-Type of application/http.")
    http = http.lstrip(b"\r\n")
    line_end = re.search(rb"\r?\n", http)
    request_line = (http[:line_end.start()] if line_end else http).decode("latin-1")
    rest = http[line_end.end():] if line_end else b""
    match = _REQUEST_LINE.fullmatch(request_line)
    if match is None:
        raise _bad(f"Malformed request line {request_line[:200]!r} in the batch body.")
    if rest[:2] == b"\r\n" or rest[:1] == b"\n":
        headers: dict[str, str] = {}
        body = rest.lstrip(b"\r\n")
    else:
        headers, body = _headers_and_body(rest)
    content_id = mime_headers.get("content-id") or headers.pop("content-id", None)
    return BatchRequest(method=match.group(1), url=match.group(2), headers=headers,
                        body=body.strip(b"\r\n"), content_id=content_id)


def _unreadable(exc: ODataError) -> BatchRequest:
    return BatchRequest(method="", url="", error=exc.message)


def _operation(block: bytes) -> BatchRequest:
    try:
        return _request(*_headers_and_body(block))
    except ODataError as exc:
        return _unreadable(exc)


def _part(block: bytes) -> BatchPart:
    try:
        headers, inner = _headers_and_body(block)
        if not headers.get("content-type", "").lower().startswith("multipart/mixed"):
            return _request(headers, inner)
        boundary = boundary_of(headers["content-type"])
        requests = [_operation(piece) for piece in _split(inner, boundary)]
    except ODataError as exc:
        return _unreadable(exc)
    for request in requests:
        if request.method == "GET":
            raise _bad("A change set cannot contain a GET request.")
    return ChangeSet(boundary, requests)


def parse_batch(body: bytes, content_type: str) -> list[BatchPart]:
    """Parse a ``$batch`` body. Unfindable boundaries raise a 400 :class:`ODataError`; a part
    that cannot be read comes back as a request with ``error`` set."""
    return [_part(block) for block in _split(body, boundary_of(content_type))]


def count_requests(parts: list[BatchPart]) -> int:
    return sum(len(p.requests) if isinstance(p, ChangeSet) else 1 for p in parts)


def _response_block(response: BatchResponse) -> bytes:
    lines = ["Content-Type: application/http", "Content-Transfer-Encoding: binary"]
    if response.content_id is not None:
        lines.append(f"Content-ID: {response.content_id}")
    reason = HTTPStatus(response.status).phrase if response.status in HTTPStatus._value2member_map_ else ""
    lines += ["", f"HTTP/1.1 {response.status} {reason}".rstrip()]
    lines += [f"{name}: {value}" for name, value in response.headers.items()]
    lines += ["", ""]
    return "\r\n".join(lines).encode("latin-1") + response.body


def format_batch(parts: list[BatchResponsePart], boundary: str | None = None) -> tuple[bytes, str]:
    """Serialise responses in order; returns (body, Content-Type header value)."""
    boundary = boundary or f"batchresponse_{uuid.uuid4()}"
    out: list[bytes] = []
    for part in parts:
        out.append(f"--{boundary}\r\n".encode())
        if isinstance(part, ChangeSetResponse):
            inner = f"changesetresponse_{uuid.uuid4()}"
            out.append(f"Content-Type: multipart/mixed; boundary={inner}\r\n\r\n".encode())
            for response in part.responses:
                out.append(f"--{inner}\r\n".encode() + _response_block(response) + b"\r\n")
            out.append(f"--{inner}--\r\n".encode())
        else:
            out.append(_response_block(part) + b"\r\n")
    out.append(f"--{boundary}--\r\n".encode())
    return b"".join(out), f"multipart/mixed; boundary={boundary}"


def _response(block: bytes) -> BatchResponse:
    mime_headers, http = _headers_and_body(block)
    http = http.lstrip(b"\r\n")
    line_end = re.search(rb"\r?\n", http)
    status_line = (http[:line_end.start()] if line_end else http).decode("latin-1")
    rest = http[line_end.end():] if line_end else b""
    match = re.match(r"HTTP/\d(?:\.\d)?\s+(\d{3})", status_line)
    if match is None:
        raise _bad(f"Malformed status line '{status_line}' in the batch response.")
    if rest[:2] == b"\r\n" or rest[:1] == b"\n":
        headers: dict[str, str] = {}
        body = rest.lstrip(b"\r\n")
    else:
        headers, body = _headers_and_body(rest)
    return BatchResponse(status=int(match.group(1)), headers=headers,
                         body=body.strip(b"\r\n"), content_id=mime_headers.get("content-id"))


def parse_batch_response(body: bytes, content_type: str) -> list[BatchResponsePart]:
    """The inverse of :func:`format_batch` (for clients and tests)."""
    parts: list[BatchResponsePart] = []
    for block in _split(body, boundary_of(content_type)):
        headers, inner = _headers_and_body(block)
        if headers.get("content-type", "").lower().startswith("multipart/mixed"):
            boundary = boundary_of(headers["content-type"])
            parts.append(ChangeSetResponse([_response(p) for p in _split(inner, boundary)]))
        else:
            parts.append(_response(block))
    return parts


def format_batch_request(parts: list[BatchPart], boundary: str | None = None) -> tuple[bytes, str]:
    """Serialise a batch request (for clients and tests); returns (body, Content-Type)."""
    boundary = boundary or f"batch_{uuid.uuid4()}"

    def block(request: BatchRequest) -> bytes:
        lines = ["Content-Type: application/http", "Content-Transfer-Encoding: binary"]
        if request.content_id is not None:
            lines.append(f"Content-ID: {request.content_id}")
        lines += ["", f"{request.method} {request.url} HTTP/1.1"]
        lines += [f"{name}: {value}" for name, value in request.headers.items()]
        lines += ["", ""]
        return "\r\n".join(lines).encode("latin-1") + request.body

    out: list[bytes] = []
    for part in parts:
        out.append(f"--{boundary}\r\n".encode())
        if isinstance(part, ChangeSet):
            out.append(f"Content-Type: multipart/mixed; boundary={part.boundary}\r\n\r\n".encode())
            for request in part.requests:
                out.append(f"--{part.boundary}\r\n".encode() + block(request) + b"\r\n")
            out.append(f"--{part.boundary}--\r\n".encode())
        else:
            out.append(block(part) + b"\r\n")
    out.append(f"--{boundary}--\r\n".encode())
    return b"".join(out), f"multipart/mixed; boundary={boundary}"
