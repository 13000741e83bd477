"""A scripted Web API behind `httpx.MockTransport` (the one transport seam), for unit tests."""

from __future__ import annotations

from collections.abc import Callable

import httpx
from pydantic import SecretStr

from connectors.common.auth import ClientCredentials
from connectors.common.clock import FakeClock
from connectors.common.http import ApiClient, HttpConfig
from topics import Applied, Command

TOKEN_URL = "https://login.example/contoso/oauth2/v2.0/token"
SECRET = "very-secret-value-42"
Handler = Callable[[httpx.Request], httpx.Response]
Answer = Callable[[str, str, bytes], httpx.Response]  # method, url, body of one request


class FakeApi:
    """Answers the token endpoint itself and hands API calls to ``handler``; records calls."""

    def __init__(self, handler: Handler, expires_in: int = 3600) -> None:
        self.handler = handler
        self.expires_in = expires_in
        self.calls: list[httpx.Request] = []
        self.tokens_issued = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if str(request.url) == TOKEN_URL:
            self.tokens_issued += 1
            return httpx.Response(200, json={"access_token": f"tok-{self.tokens_issued}",
                                             "expires_in": self.expires_in, "token_type": "Bearer"})
        self.calls.append(request)
        return self.handler(request)


def credentials() -> ClientCredentials:
    return ClientCredentials(token_url=TOKEN_URL, client_id="app-1", client_secret=SecretStr(SECRET),
                             scope="https://org.example/.default")


def api_client(fake: FakeApi, clock: FakeClock | None = None, base: str = "https://org.example/api/data/v9.2",
               **http: object) -> ApiClient:
    config = HttpConfig.model_validate(http)
    return ApiClient.build(base, credentials(), "dataverse", config, httpx.MockTransport(fake),
                           clock or FakeClock())


def command(key: str = "P-1", version: int = 1, op: str = "upsert", fields: dict[str, object] | None = None,
            fingerprint: str | None = None, txid: str | None = None, tx_size: int | None = None,
            entity: str = "ProjectsV2", target: str = "finance") -> Command:
    fields = fields if fields is not None else {"ProjectName": f"v{version}"}
    return Command.model_validate({
        "command_id": f"projects:{key}:{version}", "map": "projects", "target": target,
        "entity": entity, "key": {"dataAreaId": "usmf", "ProjectId": key}, "op": op,
        "fields": fields if op == "upsert" else {},
        "fingerprint": fingerprint or f"fp-{sorted(fields.items())}",
        "source": {"system": "dataverse", "table": "msdyn_projects", "id": f"guid-{key}",
                   "version": version, "ts_ms": 1, "txid": txid, "origin": "someone"},
        "tx_size": tx_size})


def applied(cmd: Command, etag: str | None = None) -> Applied:
    return Applied(command_id=cmd.command_id, map=cmd.map, target=cmd.target, entity=cmd.entity,
                   key=cmd.key, op=cmd.op, source_version=cmd.source.version,
                   source_system=cmd.source.system, source_table=cmd.source.table,
                   source_id=cmd.source.id, fingerprint=cmd.fingerprint, etag=etag,
                   applied_ts_ms=1)


def batch_handler(answer: Answer, refuse: Callable[[bytes], httpx.Response | None] | None = None) -> Handler:
    """A $batch endpoint built on the emulators' multipart functions; ``answer`` per request.

    ``refuse`` sees each whole $batch body first and may answer for the batch as a whole
    (a 400 or 413 for the batch request itself), as a server does with a part it cannot parse.
    """
    from emulators.common.batch import (
        BatchResponse,
        ChangeSet,
        ChangeSetResponse,
        format_batch,
        parse_batch,
    )

    def handler(request: httpx.Request) -> httpx.Response:
        if not request.url.path.endswith("$batch"):
            return answer(request.method, str(request.url), request.content)
        refused = refuse(request.content) if refuse is not None else None
        if refused is not None:
            return refused
        out: list[BatchResponse | ChangeSetResponse] = []
        for part in parse_batch(request.content, request.headers["content-type"]):
            assert isinstance(part, ChangeSet)
            responses = []
            for r in part.requests:
                res = answer(r.method, r.url, r.body)
                responses.append(BatchResponse(res.status_code, dict(res.headers), res.content, r.content_id))
                if res.status_code >= 400:
                    break  # a change set stops at its first failure (the fakes keep no undo log)
            failed = [x for x in responses if x.status >= 400]
            out.append(ChangeSetResponse(failed[:1] if failed else responses))
        body, content_type = format_batch(out)
        return httpx.Response(200, headers={"Content-Type": content_type}, content=body)

    return handler
