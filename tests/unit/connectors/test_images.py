"""The source's before images: staged while a page is parsed, durable once the engine commits
them (after Kafka acknowledged the page), dropped when the page failed."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from connectors.common.images import ImageStore, ImageStoreError
from connectors.common.source import BadRecord, Change
from topics import ChangeEvent, Source

pytestmark = pytest.mark.unit


def change(key: str, op: str, **after: object) -> Change:
    source = Source(system="finance", table="CustomersV3", version="1", ts_ms=1)
    if op == "d":
        return Change(key, ChangeEvent(before={"k": key}, after=None, op="d", ts_ms=1, source=source))
    return Change(key, ChangeEvent(after={"k": key, **after}, op=op, ts_ms=1, source=source))


async def test_committed_images_outlive_the_process(tmp_path: Path) -> None:
    path = tmp_path / "sources" / "finance-images.sqlite"
    store = ImageStore(path)
    store.remember("CustomersV3", [change("a", "c", name="A"), BadRecord.of({}, "bad"), change("b", "r", name="B")])
    await store.commit("CustomersV3")
    store.close()
    again = ImageStore(path)
    assert again.get("CustomersV3", "a") == {"k": "a", "name": "A"}
    assert again.table("CustomersV3").get("b") == {"k": "b", "name": "B"}
    assert again.get("ProjectsV2", "a") is None  # per table


def test_a_staged_image_is_read_at_once_but_durable_only_when_committed(tmp_path: Path) -> None:
    path = tmp_path / "images.sqlite"
    store = ImageStore(path)
    store.remember("CustomersV3", [change("a", "c", name="A")])
    assert store.get("CustomersV3", "a") == {"k": "a", "name": "A"}  # a later change of the same page
    assert ImageStore(path).get("CustomersV3", "a") is None  # a crash now: the page comes again


async def test_a_failed_page_is_read_again_against_the_emitted_images() -> None:
    store = ImageStore()
    store.remember("CustomersV3", [change("a", "c", name="A")])
    await store.commit("CustomersV3")
    store.remember("CustomersV3", [change("a", "u", name="A2")])
    store.discard("CustomersV3")
    assert store.get("CustomersV3", "a") == {"k": "a", "name": "A"}


async def test_a_delete_forgets_its_record() -> None:
    store = ImageStore()
    store.remember("CustomersV3", [change("a", "c", name="A")])
    await store.commit("CustomersV3")
    store.remember("CustomersV3", [change("a", "d")])
    assert store.get("CustomersV3", "a") is None
    await store.commit("CustomersV3")
    assert store.get("CustomersV3", "a") is None


async def test_a_page_staged_while_a_commit_writes_waits_for_the_next_commit(tmp_path: Path) -> None:
    """The commit takes what was staged when it was called (its page is in Kafka); a page
    parsed while it writes on its worker thread is not made durable with it."""
    path = tmp_path / "images.sqlite"
    store = ImageStore(path)
    store.remember("CustomersV3", [change("a", "c", name="A")])
    writing = asyncio.ensure_future(store.commit("CustomersV3"))
    await asyncio.sleep(0)  # the commit took its images and went to its thread
    store.remember("CustomersV3", [change("b", "c", name="B")])  # the next page, not acknowledged
    await writing
    durable = ImageStore(path)
    assert durable.get("CustomersV3", "a") == {"k": "a", "name": "A"}
    assert durable.get("CustomersV3", "b") is None
    assert store.get("CustomersV3", "b") == {"k": "b", "name": "B"}  # still staged, readable
    await store.commit("CustomersV3")
    assert ImageStore(path).get("CustomersV3", "b") == {"k": "b", "name": "B"}


def test_a_file_that_is_no_store_is_a_typed_error_saying_what_to_do(tmp_path: Path) -> None:
    junk = tmp_path / "images.sqlite"
    junk.write_bytes(b"this is not a database" * 100)
    with pytest.raises(ImageStoreError, match=r"not a usable store of before images .* move it away"):
        ImageStore(junk)
