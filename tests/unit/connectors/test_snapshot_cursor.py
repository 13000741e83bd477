"""`SourceEngine.snapshot` hooks for the initial sync: resume cursor, row selection, and a page
reported only once every event of it is acknowledged (the held "last" candidate included)."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Awaitable

import orjson
import pytest

from connectors.common.images import ImageStore
from connectors.common.source import DEAD_LETTERED, EMITTED, BadRecord, Change, Page
from tests.unit.connectors.test_source_engine import MemoryProducer, change, engine
from topics import decode_event

pytestmark = pytest.mark.unit


class PagedReader:
    """Snapshot pages with cursors; records the cursor it was asked to resume after."""

    system = "dataverse"

    def __init__(self, pages: list[Page]) -> None:
        self.images = ImageStore()
        self.pages = pages
        self.resumed: list[str] = []

    async def snapshot(self, table: str, resume: str = "") -> AsyncIterator[Page]:
        self.resumed.append(resume)
        start = next((i + 1 for i, p in enumerate(self.pages) if p.resume == resume), 0) if resume else 0
        for page in self.pages[start:]:
            yield page

    async def changes(self, table: str, position: str) -> Page:
        raise AssertionError("not streamed")

    async def aclose(self) -> None:
        pass


def r(key: str, version: int) -> Change:
    return change(key, version, "r", "true")


def emitted(producer: MemoryProducer) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for topic, _key, value, _ in producer.records:
        event = decode_event(value) if topic == "dataverse.cdc.accounts" else None
        if event is not None:
            out.append((str(event.after["accountid"]), event.source.snapshot))  # type: ignore[index]
    return out


async def test_a_page_is_reported_once_its_events_and_its_held_change_are_out() -> None:
    reader = PagedReader([Page([r("a", 1), r("b", 2)], "", True, resume="c1"),
                          Page([r("c", 3)], "", True, resume="c2"),
                          Page([r("d", 4)], "P", False)])
    source, producer = engine(reader)  # type: ignore[arg-type]
    reports: list[tuple[str, Counter[str], list[tuple[str, str]]]] = []

    def on_page(cursor: str, tally: Counter[str]) -> Awaitable[None]:
        reports.append((cursor, tally, emitted(producer)))  # what Kafka holds at the call
        return asyncio.sleep(0)

    assert await source.snapshot("accounts", on_page=on_page, checkpoint=False) == "P"
    cursors = [c for c, *_ in reports]
    # Pages acknowledged while a report runs are reported together by the next one, so which
    # cursors are reported depends on timing; the last cursor always is, then the end.
    assert cursors[-2:] == ["c2", ""] and cursors in (["c1", "c2", ""], ["c2", ""])
    assert sum((t for _, t, _ in reports), Counter()) == Counter({EMITTED: 4})
    # When a cursor is reported, every row of the pages it covers is in Kafka (b was held back
    # for the "last" mark and went out with page 2).
    covers = {"c1": {"a", "b"}, "c2": {"a", "b", "c"}, "": {"a", "b", "c", "d"}}
    for cursor, _, in_kafka in reports:
        assert covers[cursor] <= {k for k, _ in in_kafka}, cursor
    assert emitted(producer)[-1] == ("d", "last")
    assert not [t for t, *_ in producer.records if t == "offsets"]  # no streaming checkpoint


async def test_pages_acknowledged_during_a_report_are_reported_together_by_the_next() -> None:
    reader = PagedReader([Page([r("a", 1)], "", True, resume="c1"), Page([r("b", 2)], "", True, resume="c2"),
                          Page([r("c", 3)], "", True, resume="c3"), Page([r("d", 4)], "", True, resume="c4"),
                          Page([r("e", 5)], "P", False)])
    source, producer = engine(reader)  # type: ignore[arg-type]
    produce_all = producer.produce_all

    async def acknowledged_later(records: list[tuple[str, bytes | None, bytes | None, object]], *,
                                 flush: bool = False) -> None:
        await produce_all(records, flush=flush)
        for _ in range(3):  # Kafka's acknowledgement takes a while: the report starts meanwhile
            await asyncio.sleep(0)

    producer.produce_all = acknowledged_later  # type: ignore[method-assign]
    first_done = asyncio.Event()
    reports: list[tuple[str, dict[str, int]]] = []

    async def on_page(cursor: str, tally: Counter[str]) -> None:
        reports.append((cursor, dict(tally)))
        if len(reports) == 1:
            await first_done.wait()  # a checkpoint slow to be acknowledged

    snapshot = asyncio.ensure_future(source.snapshot("accounts", on_page=on_page, checkpoint=False))
    while not reports:
        await asyncio.sleep(0)
    for _ in range(50):  # the other pages go out meanwhile: nothing waits for the report
        await asyncio.sleep(0)
    assert reports == [("c1", {EMITTED: 1})]
    first_done.set()
    await snapshot
    # c2, c3 and c4 were covered while c1 was reported: one report covers the three pages.
    assert reports == [("c1", {EMITTED: 1}), ("c4", {EMITTED: 3}), ("", {EMITTED: 1})]


async def test_a_held_change_carried_over_a_page_without_rows_holds_its_cursor_back() -> None:
    reader = PagedReader([Page([r("a", 1)], "", True, resume="c1"),
                          Page([r("x", 2)], "", True, resume="c2"),
                          Page([r("b", 3)], "P", False)])
    source, producer = engine(reader)  # type: ignore[arg-type]
    reports: list[tuple[str, dict[str, int]]] = []

    async def on_page(cursor: str, tally: Counter[str]) -> None:
        reports.append((cursor, dict(tally)))

    await source.snapshot("accounts", select=lambda c: "skip" if c.key == "x" else EMITTED,
                          on_page=on_page, checkpoint=False)
    # a (page 1) is held until b arrives on page 3: c1 and c2 are reported together then.
    assert reports == [("c2", {EMITTED: 1, "skip": 1}), ("", {EMITTED: 1})]
    assert [k for k, _ in emitted(producer)] == ["a", "b"]


async def test_resume_reads_after_the_cursor_and_selection_leaves_rows_out() -> None:
    reader = PagedReader([Page([r("a", 1), BadRecord(b"{}", "no id")], "", True, resume="c1"),
                          Page([r("b", 2), r("c", 3)], "P", False)])
    source, producer = engine(reader)  # type: ignore[arg-type]
    tallies: list[dict[str, int]] = []

    async def on_page(cursor: str, tally: Counter[str]) -> None:
        tallies.append(dict(tally))

    await source.snapshot("accounts", resume="c1", select=lambda c: "other" if c.key == "b" else EMITTED,
                          on_page=on_page)
    assert reader.resumed == ["c1"]
    assert emitted(producer) == [("c", "last")]
    assert tallies == [{"other": 1, EMITTED: 1}]
    assert source.positions["accounts"] == "P"  # checkpoint=True: the live source's hand-over


async def test_dead_letters_are_counted() -> None:
    reader = PagedReader([Page([BadRecord(b"{}", "no id"), r("a", 1)], "P", False)])
    source, _ = engine(reader)  # type: ignore[arg-type]
    tallies: list[dict[str, int]] = []

    async def on_page(cursor: str, tally: Counter[str]) -> None:
        tallies.append(dict(tally))

    await source.snapshot("accounts", on_page=on_page, checkpoint=False)
    assert tallies == [{DEAD_LETTERED: 1, EMITTED: 1}]


async def test_a_page_report_runs_while_the_next_page_is_produced_and_reports_stay_in_order() -> None:
    reader = PagedReader([Page([r("a", 1)], "", True, resume="c1"), Page([r("b", 2)], "", True, resume="c2"),
                          Page([r("c", 3)], "", True, resume="c3"), Page([r("d", 4)], "P", False)])
    source, producer = engine(reader)  # type: ignore[arg-type]
    log: list[str] = []
    produce_all = producer.produce_all

    async def logged(records: list[tuple[str, bytes | None, bytes | None, object]], *, flush: bool = False) -> None:
        log.append(f"produce {len(emitted(producer))}")
        await produce_all(records, flush=flush)
        await asyncio.sleep(0)  # Kafka's acknowledgement
        log.append(f"acked {len(emitted(producer))}")

    producer.produce_all = logged  # type: ignore[method-assign]

    async def on_page(cursor: str, tally: Counter[str]) -> None:
        log.append(f"report {cursor or 'end'}")
        await asyncio.sleep(0)  # the checkpoint's round trip to Kafka
        await asyncio.sleep(0)
        log.append(f"reported {cursor or 'end'}")

    await source.snapshot("accounts", on_page=on_page, checkpoint=False)
    reports = [e for e in log if e.startswith("report")]
    # Each report ends before the next one starts, in page order, the end last.
    assert all(a.replace("report ", "reported ") == b for a, b in zip(reports[::2], reports[1::2], strict=True))
    cursors = [e.split()[1] for e in reports[::2]]
    assert cursors == [*sorted(cursors[:-1]), "end"] and cursors[-2] == "c3"
    # A report runs while the next page goes out: the loop does not wait for it.
    first = log.index(reports[0])
    assert any(e.startswith("produce") for e in log[first:log.index(reports[1])])


async def test_a_failed_page_report_fails_the_snapshot() -> None:
    reader = PagedReader([Page([r("a", 1)], "", True, resume="c1"), Page([r("b", 2)], "", True, resume="c2"),
                          Page([r("c", 3)], "", True, resume="c3"), Page([r("d", 4)], "P", False)])
    source, _ = engine(reader)  # type: ignore[arg-type]
    calls: list[str] = []

    async def on_page(cursor: str, tally: Counter[str]) -> None:
        calls.append(cursor)
        raise RuntimeError("checkpoint not acknowledged")

    with pytest.raises(RuntimeError, match="checkpoint not acknowledged"):
        await source.snapshot("accounts", on_page=on_page, checkpoint=False)
    assert len(calls) == 1  # no later page is reported after a failed report


async def test_read_ahead_produces_the_next_page_before_this_one_is_acknowledged() -> None:
    reader = PagedReader([Page([r("a", 1)], "", True, resume="c1"), Page([r("b", 2)], "", True, resume="c2"),
                          Page([r("c", 3)], "", True, resume="c3"), Page([r("d", 4)], "P", False)])
    source, producer = engine(reader)  # type: ignore[arg-type]
    log: list[str] = []
    produce_all = producer.produce_all
    acks: list[asyncio.Event] = []

    async def held_back(records: list[tuple[str, bytes | None, bytes | None, object]], *, flush: bool = False) -> None:
        keys = "".join(str(orjson.loads(k)["id"]) for _, k, _, _ in records if k)
        log.append(f"produce [{keys}]")
        await produce_all(records, flush=flush)
        ack = asyncio.Event()
        acks.append(ack)
        await ack.wait()  # Kafka acknowledges when the test says so
        log.append(f"acked [{keys}]")

    producer.produce_all = held_back  # type: ignore[method-assign]

    async def kafka() -> None:  # acknowledges each batch a few loop turns after it was produced
        done = 0
        while True:
            for _ in range(3):
                await asyncio.sleep(0)
            if done < len(acks):
                acks[done].set()
                done += 1

    async def on_page(cursor: str, tally: Counter[str]) -> None:
        log.append(f"report {cursor or 'end'}")

    acker = asyncio.create_task(kafka())
    try:
        await source.snapshot("accounts", on_page=on_page, checkpoint=False, read_ahead=True)
    finally:
        acker.cancel()
    # Each page's batch is produced before the batch before it is acknowledged (page 3 carries
    # b, held back from page 2, out before page 2's a is acknowledged); a page is reported only
    # once the batch carrying its last change is acknowledged (c1: a), in order; the "last"
    # change (d) goes out behind the page in flight too.
    assert log == ["produce []", "produce [a]", "acked []", "produce [b]", "acked [a]", "report c1",
                   "produce [c]", "acked [b]", "report c2", "produce [d]", "acked [c]", "report c3",
                   "acked [d]", "report end"]
