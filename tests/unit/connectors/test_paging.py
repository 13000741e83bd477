"""Reading pages ahead (`connectors.common.paging`): the next request is on the wire before a
page is handed over, also when the caller then works without letting the loop turn."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import orjson
import pytest
from pydantic import SecretStr

from connectors.common.auth import ClientCredentials
from connectors.common.http import ApiClient, HttpConfig
from connectors.common.paging import Sent, read_ahead
from tests.unit.connectors.fakes import FakeApi, api_client

PAGES = 4


class _Pages(BaseHTTPRequestHandler):
    """``/token`` issues a token; ``/page/N`` answers page N and notes when it arrived;
    ``/slow`` answers once the test lets it."""

    arrived: dict[int, float]

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self._answer({"access_token": "tok", "expires_in": 3600, "token_type": "Bearer"})

    def do_GET(self) -> None:
        if self.path.endswith("/slow"):
            self.server.hold.wait(10)  # type: ignore[attr-defined]
            self._answer({"value": []})
            return
        page = int(self.path.rsplit("/", 1)[1])
        self.server.arrived[page] = time.monotonic()  # type: ignore[attr-defined]
        self._answer({"value": [page]})

    def _answer(self, body: object) -> None:
        data = orjson.dumps(body)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[ThreadingHTTPServer]:
    """A real HTTP server on loopback, on a thread of its own: it takes requests while the
    test's event loop is blocked."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Pages)
    httpd.arrived = {}  # type: ignore[attr-defined]
    httpd.hold = threading.Event()  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.hold.set()  # type: ignore[attr-defined]
    httpd.shutdown()
    httpd.server_close()


async def test_the_next_request_is_on_the_wire_before_a_page_is_worked_on(server: ThreadingHTTPServer) -> None:
    base = f"http://127.0.0.1:{server.server_address[1]}"
    api = ApiClient.build(base, ClientCredentials(token_url=f"{base}/token", client_id="app", scope="s",
                                                  client_secret=SecretStr("secret")), "finance", HttpConfig())

    async def fetch(page: int) -> tuple[int, int | None]:
        answer = await api.request("GET", f"page/{page}")
        return answer.json()["value"][0], page + 1 if page + 1 < PAGES else None

    worked: dict[int, tuple[float, float]] = {}
    try:
        async for page in read_ahead(fetch, 0):
            started = time.monotonic()
            time.sleep(0.2)  # turning the page into events: CPU, the loop does not turn
            worked[page] = (started, time.monotonic())
    finally:
        await api.aclose()
    arrived: dict[int, float] = server.arrived  # type: ignore[attr-defined]
    assert sorted(worked) == list(range(PAGES))
    for page in range(PAGES - 1):
        # Page N+1's request reached the server while page N was worked on: a request merely
        # started would have left only when the loop turned again, after the work.
        assert arrived[page + 1] < worked[page][1], (page, arrived, worked)


async def test_a_request_is_reported_once_written_before_its_answer_comes(server: ThreadingHTTPServer) -> None:
    base = f"http://127.0.0.1:{server.server_address[1]}"
    api = ApiClient.build(base, ClientCredentials(token_url=f"{base}/token", client_id="app", scope="s",
                                                  client_secret=SecretStr("secret")), "finance", HttpConfig())
    sent = Sent()
    try:
        answer = sent.start(api.request("GET", "slow"))  # the server holds its answer
        await sent.until(1, answer, wait_s=5.0)
        assert sent.count == 1 and not answer.done()  # httpx's trace: written, not answered
        server.hold.set()  # type: ignore[attr-defined]
        assert (await answer).status_code == 200 and sent.count == 1  # once per attempt
    finally:
        await api.aclose()


async def test_an_attempt_is_reported_once_also_through_a_transport_that_does_not_trace() -> None:
    answers = iter([httpx.Response(503), httpx.Response(200, json={"value": []}), httpx.Response(200, json={})])
    client = api_client(FakeApi(lambda _: next(answers)), max_attempts=3)
    sent = Sent()

    async def attempt() -> int:
        return (await client.request("GET", "accounts")).status_code

    assert await sent.start(attempt()) == 200
    assert sent.count == 2  # the refused attempt and the answered one
    await client.request("GET", "accounts")  # outside `start`: not counted
    assert sent.count == 2
    await client.aclose()


async def test_a_page_is_handed_over_when_no_request_goes_out_in_time() -> None:
    sent = Sent()
    stuck = sent.start(asyncio.sleep(3600))  # a request waiting for a throttling window
    await sent.until(1, stuck, wait_s=0.01)
    assert not stuck.done() and sent.count == 0
    stuck.cancel()


async def test_a_failed_fetch_is_raised_after_the_answers_before_it() -> None:
    async def fetch(page: int) -> tuple[int, int | None]:
        if page == 2:
            raise RuntimeError("page 2 refused")
        return page, page + 1

    seen: list[int] = []
    with pytest.raises(RuntimeError, match="page 2 refused"):
        async for page in read_ahead(fetch, 0):
            seen.append(page)
    assert seen == [0, 1]


async def test_the_requests_stop_when_the_reader_stops_early() -> None:
    fetched: list[int] = []

    async def fetch(page: int) -> tuple[int, int | None]:
        fetched.append(page)
        return page, page + 1  # endless

    pages = read_ahead(fetch, 0)
    assert await anext(pages) == 0
    await pages.aclose()
    before = len(fetched)
    for _ in range(50):
        await asyncio.sleep(0)
    assert len(fetched) == before <= 3  # two answers ahead at most, none after the close
