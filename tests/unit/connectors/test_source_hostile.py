"""Both readers against a hostile or careless source API (scripted behind httpx.MockTransport):
a bad row is a `BadRecord` and its page goes on; a bad answer is a typed error of that table;
links and stored positions outside the configured API are never followed."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx
import pytest

from connectors.common.auth import ForeignOrigin
from connectors.common.clock import FakeClock
from connectors.common.source import BadRecord, Change, Page, UnreadableAnswer, UntrustedPosition
from connectors.dataverse.client import DataverseConnection
from connectors.dataverse.source import DataverseReader
from connectors.finance.client import FinanceConnection
from connectors.finance.source import FinanceReader
from tests.unit.connectors.fakes import SECRET, TOKEN_URL, FakeApi, api_client

pytestmark = pytest.mark.unit

DV = "https://org.example/api/data/v9.2"
FO = "https://fo.example/data"
EVIL = "https://evil.example"
KEYS = ("dataAreaId", "AccountNum")
ARABIC_INDIC = "\u0661\u0662\u0663"  # "123" in Arabic-Indic digits: int() reads it, isdigit() says yes


def dv_reader(handler: Callable[[httpx.Request], httpx.Response]) -> tuple[DataverseReader, FakeApi]:
    fake = FakeApi(handler)
    conn = DataverseConnection(url="https://org.example", token_url=TOKEN_URL, client_id="c",
                               client_secret=SECRET)
    return DataverseReader(conn, api_client(fake, FakeClock(), base=DV)), fake


def fo_reader(handler: Callable[[httpx.Request], httpx.Response],
              keys: dict[str, tuple[str, ...]] | None = None) -> tuple[FinanceReader, FakeApi]:
    fake = FakeApi(handler)
    conn = FinanceConnection(url="https://fo.example", token_url=TOKEN_URL, client_id="c",
                             client_secret=SECRET, keys={"Custs": KEYS} if keys is None else keys)
    clock = FakeClock()
    return FinanceReader(conn, api_client(fake, clock, base=FO), clock, coalesce_s=0), fake


def account(n: int, version: object) -> dict[str, object]:
    return {"accountid": f"a-{n}", "name": f"A{n}", "versionnumber": version}


HOSTILE_VERSIONS = ["1" * 25, ARABIC_INDIC, 2**63, str(2**63), 2**64, -3, "12a", True, 1.5, None]


async def test_dataverse_bad_rows_are_dead_letters_and_the_page_goes_on() -> None:
    rows: list[object] = [account(0, 7)]
    rows += [account(i + 1, v) for i, v in enumerate(HOSTILE_VERSIONS)]
    rows += [{"accountid": {"nested": 1}, "versionnumber": 9},  # a key that is not a scalar
             {"accountid": "a-big", "versionnumber": 8, "amount": 2**70},  # encoded (or not) later
             "not an object", account(99, 2**63 - 1)]
    delta = f"{DV}/accounts?$deltatoken=100!1"
    reader, _ = dv_reader(lambda r: httpx.Response(200, json={"value": rows, "@odata.deltaLink": delta}))
    page = await reader.changes("accounts", f"{DV}/accounts?$deltatoken=90!1")
    kinds = [type(i).__name__ for i in page.items]
    assert kinds == ["Change"] + ["BadRecord"] * (len(HOSTILE_VERSIONS) + 1) + ["Change", "BadRecord", "Change"]
    assert page.position == delta  # the page moves on past its dead letters
    bad = [i for i in page.items if isinstance(i, BadRecord)]
    assert all("versionnumber" in b.reason for b in bad[:len(HOSTILE_VERSIONS)])
    assert bad[0].error_class == "BadVersion" and b'"1111111111111111111111111"' in bad[0].payload
    last = page.items[-1]
    assert isinstance(last, Change) and last.event.source.version == str(2**63 - 1)
    # Read exactly (orjson would read it as a float, 1.1805916207174113e+21, and the row would
    # flow with another value): the integer that no event can carry makes that row a dead letter.
    big = page.items[-3]
    assert isinstance(big, Change) and big.event.after is not None and big.event.after["amount"] == 2**70
    assert type(big.event.after["amount"]) is int
    await reader.aclose()


@pytest.mark.parametrize("answer", [
    httpx.Response(200, headers={"content-type": "text/html"}, content=b"<html><body>Sign in</body></html>"),
    httpx.Response(200, headers={"content-type": "application/json"}, content=b'{"value": [{"accountid": "a'),
    httpx.Response(200, content=b"\xff\xfe\x00garbage"),
    httpx.Response(200, json=[1, 2, 3]),
    httpx.Response(200, content=b"[" * 100_000 + b"]" * 100_000),
])
async def test_dataverse_unreadable_answer_is_a_typed_error_never_a_crash(answer: httpx.Response) -> None:
    reader, _ = dv_reader(lambda r: answer)
    with pytest.raises(UnreadableAnswer, match="not a JSON object"):
        await reader.changes("accounts", f"{DV}/accounts?$deltatoken=1!1")
    with pytest.raises(UnreadableAnswer):
        _ = [p async for p in reader.snapshot("accounts")]
    await reader.aclose()


@pytest.mark.parametrize("link", [f"{EVIL}/api/data/v9.2/accounts?$skiptoken=2",
                                  "https://org.example:8443/api/data/v9.2/accounts?$skiptoken=2",
                                  "https://org.example/api/data/v9.2/../../_admin/x"])
@pytest.mark.parametrize("name", ["@odata.nextLink", "@odata.deltaLink"])
async def test_dataverse_foreign_link_in_an_answer_fails_that_page_and_is_never_followed(link: str, name: str) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if "_admin" in request.url.path:  # followed after all: a plain last page, so nothing hangs
            return httpx.Response(200, json={"value": [], "@odata.deltaLink": f"{DV}/accounts?$deltatoken=2!1"})
        return httpx.Response(200, json={"value": [account(1, 5)], name: link})

    reader, fake = dv_reader(handler)
    with pytest.raises(ForeignOrigin, match=name):
        _ = [p async for p in reader.snapshot("accounts")]
    with pytest.raises(ForeignOrigin):
        await reader.changes("accounts", f"{DV}/accounts?$deltatoken=1!1")
    assert [c.url.host for c in fake.calls] == ["org.example", "org.example"]
    await reader.aclose()


@pytest.mark.parametrize("name", ["@odata.nextLink", "@odata.deltaLink"])
async def test_a_link_holding_a_lone_surrogate_is_a_typed_error_never_followed(name: str) -> None:
    """A lone surrogate (valid in the JSON text, not in UTF-8) in a link: httpx cannot parse it."""
    body = ('{"value": [{"accountid": "a-1", "versionnumber": 7}], '
            f'"{name}": "{DV}/accounts?$deltatoken=100!\\ud800"}}').encode()
    reader, fake = dv_reader(lambda r: httpx.Response(200, content=body, headers={"content-type": "application/json"}))
    with pytest.raises(ForeignOrigin, match="not a URL"):
        _ = [p async for p in reader.snapshot("accounts")]
    with pytest.raises(ForeignOrigin, match="not a URL"):
        await reader.changes("accounts", f"{DV}/accounts?$deltatoken=1!1")
    assert len(fake.calls) == 2  # never followed
    await reader.aclose()


async def test_dataverse_stored_delta_link_to_another_host_is_untrusted() -> None:
    reader, fake = dv_reader(lambda r: httpx.Response(200, json={"value": []}))
    for forged in (f"{EVIL}/api/data/v9.2/accounts?$deltatoken=1!1", "accounts?$deltatoken=1!1", ""):
        with pytest.raises(UntrustedPosition):
            await reader.changes("accounts", forged)
    assert fake.calls == [] and fake.tokens_issued == 0
    await reader.aclose()


def feed_entry(version: object, account_num: object = "C-1", entity: str = "Custs") -> dict[str, object]:
    return {"version": version, "entity": entity, "op": "u", "key": {"dataAreaId": "usmf", "AccountNum": account_num},
            "row": {"dataAreaId": "usmf", "AccountNum": account_num}, "txid": None, "ts_ms": 1}


async def test_finance_bad_feed_entries_are_dead_letters_and_the_position_moves_on() -> None:
    entries = [feed_entry(11), *[feed_entry(v, f"H-{i}") for i, v in enumerate(HOSTILE_VERSIONS)],
               feed_entry(12, {"x": 1}), feed_entry(13, "O-1", entity="Others"),
               {**feed_entry(14, "T-1"), "ts_ms": 2**70}, feed_entry(2**63 - 1, "M-1")]
    reader, _ = fo_reader(lambda r: httpx.Response(200, json={"value": entries, "watermark": 2**63 - 1}))
    page = await reader.changes("Custs", "10")
    changes = [i for i in page.items if isinstance(i, Change)]
    bad = [i for i in page.items if isinstance(i, BadRecord)]
    assert [c.key for c in changes] == ["usmf|C-1", "usmf|T-1", "usmf|M-1"]
    assert len(bad) == len(HOSTILE_VERSIONS) + 2
    assert any("not asked for" in b.reason for b in bad)  # never an event on this table's topic
    assert changes[1].event.source.ts_ms == 1_700_000_000_000  # an absurd ts_ms falls back to capture time
    assert page.position == str(2**63 - 1)
    await reader.aclose()


@pytest.mark.parametrize("watermark", ["abc", ARABIC_INDIC, 2**63, -1, None, 1.5, "9" * 20])
async def test_finance_feed_without_a_usable_watermark_is_an_unreadable_answer(watermark: object) -> None:
    body = {"value": [feed_entry(11)], **({} if watermark is None else {"watermark": watermark})}
    reader, _ = fo_reader(lambda r: httpx.Response(200, json=body))
    with pytest.raises(UnreadableAnswer, match="watermark"):
        await reader.changes("Custs", "10")
    with pytest.raises(UnreadableAnswer, match="watermark"):
        _ = [p async for p in reader.snapshot("Custs")]  # the position taken before the rows
    await reader.aclose()


@pytest.mark.parametrize("stored", ["abc", ARABIC_INDIC, "9" * 20, str(2**63), "-1", "", "https://evil.example/1"])
async def test_finance_stored_position_that_is_not_a_version_is_untrusted(stored: str) -> None:
    reader, fake = fo_reader(lambda r: httpx.Response(200, json={"value": [], "watermark": 1}))
    with pytest.raises(UntrustedPosition):
        await reader.changes("Custs", stored)
    assert fake.calls == []
    await reader.aclose()


async def test_finance_unreadable_metadata_fails_only_the_tables_that_need_it() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("$metadata"):
            return httpx.Response(200, content=b"<html><body>Service unavailable<br></body>")
        return httpx.Response(200, json={"value": [feed_entry(11), feed_entry(12, "V-1", "Vends")], "watermark": 12})

    reader, _ = fo_reader(handler)  # keys configured for Custs only: Vends needs $metadata
    custs, vends = await asyncio.gather(reader.changes("Custs", "10"), reader.changes("Vends", "10"),
                                        return_exceptions=True)
    assert isinstance(custs, Page) and [i.key for i in custs.items] == ["usmf|C-1"]  # type: ignore[union-attr]
    assert custs.position == "12"
    assert isinstance(vends, UnreadableAnswer) and "$metadata" in vends.reason
    with pytest.raises(UnreadableAnswer, match="metadata"):
        _ = [p async for p in reader.snapshot("Vends")]
    await reader.aclose()


async def test_finance_snapshot_rows_are_isolated_and_a_foreign_next_link_fails_the_page() -> None:
    rows = [{"dataAreaId": "usmf", "AccountNum": "C-1", "RecVersion": 3},
            {"dataAreaId": "usmf", "AccountNum": "C-2", "RecVersion": 2**65},
            {"dataAreaId": "usmf", "AccountNum": ["C-3"], "RecVersion": 4},
            {"dataAreaId": "usmf", "AccountNum": "C-4", "RecVersion": ARABIC_INDIC}]

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/ChangeFeed"):
            return httpx.Response(200, json={"value": [], "watermark": 50})
        if "$orderby" in request.url.params:  # no keyset paging: follow the service's next links
            return httpx.Response(400, json={"error": {"message": "no RecId"}})
        return httpx.Response(200, json={"value": rows, "@odata.nextLink": f"{EVIL}/data/Custs?$skip=4"})

    reader, fake = fo_reader(handler)
    seen: list[Page] = []
    with pytest.raises(ForeignOrigin, match="nextLink"):
        async for page in reader.snapshot("Custs"):
            seen.append(page)
    assert seen == []  # the page that named the foreign link is not emitted
    assert all(c.url.host == "fo.example" for c in fake.calls)

    rows_only = FakeApi(lambda r: httpx.Response(200, json={"value": [], "watermark": 50}
                                                 if r.url.path.endswith("/ChangeFeed") else {"value": rows}))
    conn = FinanceConnection(url="https://fo.example", token_url=TOKEN_URL, client_id="c", client_secret=SECRET,
                             keys={"Custs": KEYS})
    reader2 = FinanceReader(conn, api_client(rows_only, FakeClock(), base=FO))
    (page,) = [p async for p in reader2.snapshot("Custs")]
    assert [type(i).__name__ for i in page.items] == ["Change", "BadRecord", "BadRecord", "BadRecord"]
    assert page.position == "50"
    await reader.aclose()
    await reader2.aclose()
