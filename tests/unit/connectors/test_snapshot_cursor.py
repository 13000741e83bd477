"""`SourceEngine.snapshot` hooks for the initial sync: resume cursor, row selection, and a page
reported only once every event of it is acknowledged (the held "last" candidate included)."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator

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

    async def on_page(cursor: str, tally: Counter[str]) -> None:
        reports.append((cursor, tally, emitted(producer)))

    assert await source.snapshot("accounts", on_page=on_page, checkpoint=False) == "P"
    assert [(c, dict(t)) for c, t, _ in reports] == [("c1", {EMITTED: 2}), ("c2", {EMITTED: 1}),
                                                     ("", {EMITTED: 1})]
    # When c1 is reported, both rows of page 1 (b was held back) are in Kafka.
    assert {k for k, _ in reports[0][2]} == {"a", "b"}
    assert emitted(producer)[-1] == ("d", "last")
    assert not [t for t, *_ in producer.records if t == "offsets"]  # no streaming checkpoint


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


async def test_read_ahead_requests_the_next_page_before_this_one_is_produced() -> None:
    log: list[str] = []

    class LoggedReader(PagedReader):
        async def snapshot(self, table: str, resume: str = "") -> AsyncIterator[Page]:
            for page in self.pages:
                log.append(f"read {page.items[0].key}")  # type: ignore[union-attr]
                yield page

    reader = LoggedReader([Page([r("a", 1)], "", True, resume="c1"), Page([r("b", 2)], "", True, resume="c2"),
                           Page([r("c", 3)], "P", False)])
    source, producer = engine(reader)  # type: ignore[arg-type]
    produce_all = producer.produce_all

    async def logged(records: list[tuple[str, bytes | None, bytes | None, object]]) -> None:
        log.append(f"produce {len(records)}")
        await asyncio.sleep(0)  # waiting for Kafka's acknowledgement
        await produce_all(records)
        log.append("acked")

    producer.produce_all = logged  # type: ignore[method-assign]
    await source.snapshot("accounts", checkpoint=False, read_ahead=True)
    # Page 2 is requested while page 1's events wait for their acknowledgement.
    assert log[:4] == ["read a", "produce 0", "read b", "acked"]
    assert [k for k, _ in emitted(producer)] == ["a", "b", "c"]
