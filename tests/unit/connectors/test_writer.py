"""The shared OData writer under hostile keys and broken units (issue 8, findings 1, 2, 3, 8)."""

from __future__ import annotations

import json
import re

import httpx
import pytest

from connectors.common.batch import BatchOp
from connectors.common.clock import FakeClock
from connectors.common.sinkstate import Write
from connectors.common.writer import Done, Failed, Outcome
from connectors.finance.sink import FinanceWriter
from tests.unit.connectors.fakes import FakeApi, api_client, batch_handler, command

pytestmark = pytest.mark.unit

ROOT = "https://fo.example/data"
INJECTION = "P-1\r\nMSCRM.CallerID: 00000000-0000-0000-0000-000000000666"


def created(method: str, url: str, body: bytes) -> httpx.Response:
    """Every write lands; a POST answers like FO with the new row."""
    return httpx.Response(201 if method == "POST" else 204, json={"RecId": 1} if method == "POST" else None)


def writer_for(fake: FakeApi, batch_size: int, cls: type[FinanceWriter] = FinanceWriter) -> FinanceWriter:
    return cls(api_client(fake, FakeClock(), base=ROOT), ROOT, batch_size=batch_size)


def by_key(outcomes: list[Outcome]) -> dict[str, Outcome]:
    return {str(o.write.command.key["ProjectId"]): o for o in outcomes}


@pytest.mark.parametrize("batch_size", [1, 10])
async def test_a_key_with_a_line_break_is_refused_before_any_request(batch_size: int) -> None:
    fake = FakeApi(batch_handler(created))
    writer = writer_for(fake, batch_size)
    outcomes = by_key(await writer.write([[Write(command(INJECTION, 1, op="delete"))], [Write(command("P-2", 1))]]))
    bad = outcomes[INJECTION]
    assert isinstance(bad, Failed) and bad.rejected.error_class == "InvalidKey"
    assert "control character U+000D" in bad.rejected.reason
    assert isinstance(outcomes["P-2"], Done)
    sent = b"".join(r.content + str(r.url).encode() for r in fake.calls)
    assert b"CallerID" not in sent and b"\r\nMSCRM" not in sent
    assert len(fake.calls) == 1  # only the good write went out


@pytest.mark.parametrize("max_change_set", [1000, 1])
async def test_a_transaction_with_an_invalid_key_fails_whole_and_sends_nothing(max_change_set: int) -> None:
    fake = FakeApi(batch_handler(created))
    unit = [Write(command("P-1", 1, txid="t", tx_size=2)), Write(command("P\x852", 1, txid="t", tx_size=2))]
    outcomes = await writer_for(fake, 10).write([unit], None, max_change_set)
    assert all(isinstance(o, Failed) and o.rejected.error_class == "InvalidKey" for o in outcomes)
    assert fake.calls == []


@pytest.mark.parametrize("batch_size", [1, 10])
async def test_non_latin1_keys_travel_percent_encoded_and_land(batch_size: int) -> None:
    seen: list[str] = []

    def answer(method: str, url: str, body: bytes) -> httpx.Response:
        seen.append(url)
        return created(method, url, body)

    fake = FakeApi(batch_handler(answer))
    writer = writer_for(fake, batch_size)
    keys = ["Łódź-1", "€", "US%2D001", "A#B", "A?x=1", "a/b"]
    outcomes = await writer.write([[Write(command(k, 1, op="delete"))] for k in keys])
    assert all(isinstance(o, Done) for o in outcomes)
    for request in fake.calls:
        assert request.url.raw_path.isascii()
        if request.url.path.endswith("$batch"):
            head_lines = [line for line in request.content.split(b"\r\n") if b" HTTP/1.1" in line]
            assert all(line.isascii() for line in head_lines)
    assert "%C5%81%C3%B3d%C5%BA-1" in "".join(seen) and "%E2%82%AC" in "".join(seen)
    assert "US%252D001" in "".join(seen) and "A%23B" in "".join(seen) and "a%2Fb" in "".join(seen)


class Boom(FinanceWriter):
    """Raises where a bug tripped by one command's data would."""

    def plan(self, write: Write) -> BatchOp:
        if write.command.key["ProjectId"] == "PLAN":
            raise RuntimeError("plan exploded")
        return super().plan(write)

    def judge(self, write: Write, op: BatchOp, result: object) -> object:  # type: ignore[override]
        if write.command.key["ProjectId"] == "JUDGE":
            raise KeyError("judge exploded")
        return super().judge(write, op, result)  # type: ignore[arg-type]


@pytest.mark.parametrize("batch_size", [1, 10])
async def test_an_exception_in_one_unit_fails_that_unit_only(batch_size: int) -> None:
    fake = FakeApi(batch_handler(created))
    writer = writer_for(fake, batch_size, Boom)
    outcomes = by_key(await writer.write([[Write(command(k, 1))] for k in ("P-1", "PLAN", "JUDGE", "P-2")]))
    plan, judge = outcomes["PLAN"], outcomes["JUDGE"]
    assert isinstance(plan, Failed) and plan.rejected.error_class == "RuntimeError"
    assert "plan exploded" in plan.rejected.reason
    assert isinstance(judge, Failed) and judge.rejected.error_class == "KeyError"
    assert isinstance(outcomes["P-1"], Done) and isinstance(outcomes["P-2"], Done)


async def test_a_pack_whose_sending_raises_is_sent_again_unit_by_unit() -> None:
    def answer(method: str, url: str, body: bytes) -> httpx.Response:
        if b"POISON" in body:
            raise ValueError("transport choked")
        return created(method, url, body)

    fake = FakeApi(batch_handler(answer))
    writer = writer_for(fake, 10)
    outcomes = by_key(await writer.write([[Write(command(k, 1, fields={"ProjectName": k}))]
                                          for k in ("P-1", "POISON", "P-2")]))
    poison = outcomes["POISON"]
    assert isinstance(poison, Failed) and poison.rejected.error_class == "ValueError"
    assert isinstance(outcomes["P-1"], Done) and isinstance(outcomes["P-2"], Done)


def refuse_if(marker: bytes, status: int = 400):  # type: ignore[no-untyped-def]
    def refuse(body: bytes) -> httpx.Response | None:
        if marker in body:
            return httpx.Response(status, json={"error": {"code": "0x0", "message": "malformed part"}})
        return None
    return refuse


async def test_a_refused_batch_is_split_so_only_the_bad_write_is_rejected() -> None:
    fake = FakeApi(batch_handler(created, refuse_if(b"BAD")))
    writer = writer_for(fake, 10)
    keys = [f"P-{i}" for i in range(7)] + ["BAD"]
    outcomes = by_key(await writer.write([[Write(command(k, 1, fields={"ProjectName": k}))] for k in keys]))
    bad = outcomes.pop("BAD")
    assert isinstance(bad, Failed) and bad.rejected.status == 400 and "malformed part" in bad.rejected.body
    assert all(isinstance(o, Done) for o in outcomes.values())
    # log2 splitting: 8 units -> 1 + 2 + 2 + 2 batch requests, never one per write and more
    assert len(fake.calls) == 7


async def test_a_batch_too_large_is_split_until_it_fits() -> None:
    def too_large(body: bytes) -> httpx.Response | None:
        return httpx.Response(413) if body.count(b"Content-ID:") > 2 else None

    fake = FakeApi(batch_handler(created, too_large))
    outcomes = await writer_for(fake, 10).write([[Write(command(f"P-{i}", 1))] for i in range(8)])
    assert len(outcomes) == 8 and all(isinstance(o, Done) for o in outcomes)


async def test_a_refused_change_set_is_never_split_and_fails_as_a_unit() -> None:
    fake = FakeApi(batch_handler(created, refuse_if(b"BAD")))
    tx = [Write(command(k, 1, txid="t", tx_size=2, fields={"ProjectName": k})) for k in ("T-1", "BAD")]
    singles = [[Write(command(k, 1))] for k in ("P-1", "P-2", "P-3")]
    outcomes = by_key(await writer_for(fake, 10).write([singles[0], tx, *singles[1:]]))
    assert isinstance(outcomes["T-1"], Failed) and isinstance(outcomes["BAD"], Failed)
    assert all(isinstance(outcomes[k], Done) for k in ("P-1", "P-2", "P-3"))
    for request in fake.calls:  # the two writes of the transaction always travel together
        text = request.content.decode()
        assert ("'T-1'" in text or '"T-1"' in text) == ("BAD" in text)
    assert all(len(re.findall(r"changeset_", r.content.decode())) > 0 for r in fake.calls)


# -- a transaction larger than the target's change set limit (issue 11) ----------------------

def transaction(keys: list[str]) -> list[Write]:
    """One source transaction's writes, in its order (the first: the header)."""
    return [Write(command(k, 1, txid="t", tx_size=len(keys), fields={"ProjectName": k})) for k in keys]


def change_sets(request: httpx.Request) -> list[list[str]]:
    """The ProjectIds written by each change set of a $batch request, in order."""
    from emulators.common.batch import ChangeSet, parse_batch

    out = []
    for part in parse_batch(request.content, request.headers["content-type"]):
        assert isinstance(part, ChangeSet)
        out.append([json.loads(r.body)["ProjectId"] for r in part.requests])
    return out


class Heard:
    """A `landed` hook that notes what landed and how many requests had been sent by then."""

    def __init__(self, fake: FakeApi) -> None:
        self.fake = fake
        self.calls: list[tuple[int, list[str]]] = []

    async def __call__(self, done: list[Done]) -> None:
        self.calls.append((len(self.fake.calls), [str(d.write.command.key["ProjectId"]) for d in done]))


async def test_a_transaction_above_the_cap_goes_in_ordered_parts_each_after_the_one_before() -> None:
    fake = FakeApi(batch_handler(created))
    heard = Heard(fake)
    keys = ["HEADER", *(f"T-{i}" for i in range(1, 7))]
    outcomes = await writer_for(fake, 50).write([transaction(keys)], heard, max_change_set=3)
    assert len(outcomes) == 7 and all(isinstance(o, Done) for o in outcomes)
    # one request per part, each a single change set of at most the cap, the header in the first
    assert [change_sets(r) for r in fake.calls] == [[keys[0:3]], [keys[3:6]], [keys[6:7]]]
    # each part sent only after the one before it landed (and the hook heard of it)
    assert heard.calls == [(1, keys[0:3]), (2, keys[3:6])]


async def test_a_transaction_within_the_cap_is_one_change_set_and_the_hook_is_not_called() -> None:
    fake = FakeApi(batch_handler(created))
    heard = Heard(fake)
    keys = [f"T-{i}" for i in range(5)]
    await writer_for(fake, 50).write([transaction(keys)], heard, max_change_set=5)
    assert [change_sets(r) for r in fake.calls] == [[keys]]
    assert heard.calls == []


async def test_a_failed_part_stops_the_rest_of_its_transaction() -> None:
    fake = FakeApi(batch_handler(created, refuse_if(b"BAD")))
    heard = Heard(fake)
    keys = ["T-0", "T-1", "T-2", "BAD", "T-4", "T-5"]
    single = [Write(command("P-1", 1))]
    outcomes = by_key(await writer_for(fake, 50).write([transaction(keys), single], heard, max_change_set=2))
    assert all(isinstance(outcomes[k], Done) for k in ("T-0", "T-1", "P-1"))
    for k in ("T-2", "BAD"):  # the part that was refused, whole
        o = outcomes[k]
        assert isinstance(o, Failed) and o.rejected.status == 400 and "rolled back" in o.rejected.reason
    for k in ("T-4", "T-5"):  # never sent, dead-lettered with the part's reason
        o = outcomes[k]
        assert isinstance(o, Failed) and o.rejected.reason.startswith("not sent: an earlier part")
        assert o.rejected.status == 400
    sent = [k for r in fake.calls for cs in change_sets(r) for k in cs]
    assert "T-4" not in sent and "T-5" not in sent
    assert heard.calls == [(1, ["T-0", "T-1"])]


async def test_a_part_that_must_wait_holds_the_rest_back_to_be_retried() -> None:
    def busy(method: str, url: str, body: bytes) -> httpx.Response:
        if b"T-2" in body:
            return httpx.Response(503, headers={"Retry-After": "3"})
        return created(method, url, body)

    fake = FakeApi(batch_handler(busy))
    keys = [f"T-{i}" for i in range(6)]
    outcomes = by_key(await writer_for(fake, 50).write([transaction(keys)], None, max_change_set=2))
    assert [type(outcomes[k]).__name__ for k in keys] == ["Done", "Done", "Again", "Again", "Again", "Again"]
    sent = [k for r in fake.calls for cs in change_sets(r) for k in cs]
    assert "T-4" not in sent and "T-5" not in sent
