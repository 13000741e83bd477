"""The source's before images: staged while a page is parsed, durable once the engine commits
them (after Kafka acknowledged the page), dropped when the page failed."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

import connectors.common.images as images
from connectors.common.images import ImageStore, ImageStoreError
from connectors.common.source import BadRecord, Change
from topics import ChangeEvent, Source

pytestmark = pytest.mark.unit


def change(key: str, op: str, **after: object) -> Change:
    source = Source(system="finance", table="CustomersV3", version="1", ts_ms=1)
    if op == "d":
        return Change(key, ChangeEvent(before={"k": key}, after=None, op="d", ts_ms=1, source=source))
    return Change(key, ChangeEvent(after={"k": key, **after}, op=op, ts_ms=1, source=source))


def reopened(store: ImageStore, path: Path) -> ImageStore:
    """The store as the next process finds it (LMDB refuses a second open in one process)."""
    store.close()
    return ImageStore(path)


async def test_committed_images_outlive_the_process(tmp_path: Path) -> None:
    path = tmp_path / "sources" / "finance-images.lmdb"
    store = ImageStore(path)
    store.remember("CustomersV3", [change("a", "c", name="A"), BadRecord.of({}, "bad"), change("b", "r", name="B")])
    await store.commit("CustomersV3")
    again = reopened(store, path)
    assert again.get("CustomersV3", "a") == {"k": "a", "name": "A"}
    assert again.table("CustomersV3").get("b") == {"k": "b", "name": "B"}
    assert again.get("ProjectsV2", "a") is None  # per table


def test_a_staged_image_is_read_at_once_but_durable_only_when_committed(tmp_path: Path) -> None:
    path = tmp_path / "images.lmdb"
    store = ImageStore(path)
    store.remember("CustomersV3", [change("a", "c", name="A")])
    assert store.get("CustomersV3", "a") == {"k": "a", "name": "A"}  # a later change of the same page
    assert reopened(store, path).get("CustomersV3", "a") is None  # a crash now: the page comes again


@pytest.mark.parametrize("path", [None, "images.lmdb"])
async def test_a_failed_page_is_read_again_against_the_emitted_images(path: str | None, tmp_path: Path) -> None:
    store = ImageStore(path and tmp_path / path)
    store.remember("CustomersV3", [change("a", "c", name="A")])
    await store.commit("CustomersV3")
    store.remember("CustomersV3", [change("a", "u", name="A2")])
    store.discard("CustomersV3")
    assert store.get("CustomersV3", "a") == {"k": "a", "name": "A"}


@pytest.mark.parametrize("path", [None, "images.lmdb"])
async def test_a_delete_forgets_its_record(path: str | None, tmp_path: Path) -> None:
    store = ImageStore(path and tmp_path / path)
    store.remember("CustomersV3", [change("a", "c", name="A"), change("b", "c", name="B")])
    await store.commit("CustomersV3")
    store.remember("CustomersV3", [change("a", "d")])
    assert store.get("CustomersV3", "a") is None
    await store.commit("CustomersV3")
    assert store.get("CustomersV3", "a") is None
    assert store.get("CustomersV3", "b") == {"k": "b", "name": "B"}  # the delete took only its own


async def test_a_page_staged_while_a_commit_writes_waits_for_the_next_commit(tmp_path: Path) -> None:
    """The commit takes what was staged when it was called (its page is in Kafka); a page
    parsed while it writes on its worker thread is not made durable with it."""
    path = tmp_path / "images.lmdb"
    store = ImageStore(path)
    store.remember("CustomersV3", [change("a", "c", name="A")])
    writing = asyncio.ensure_future(store.commit("CustomersV3"))
    await asyncio.sleep(0)  # the commit took its images and went to its thread
    store.remember("CustomersV3", [change("b", "c", name="B")])  # the next page, not acknowledged
    await writing
    assert store.get("CustomersV3", "b") == {"k": "b", "name": "B"}  # still staged, readable
    durable = reopened(store, path)  # a crash now
    assert durable.get("CustomersV3", "a") == {"k": "a", "name": "A"}
    assert durable.get("CustomersV3", "b") is None


async def test_long_and_odd_record_keys_each_keep_their_own_image(tmp_path: Path) -> None:
    """LMDB keys hold 511 bytes: a longer record key goes by its digest, never meeting another."""
    path = tmp_path / "images.lmdb"
    store = ImageStore(path)
    long_a, long_b, odd = "x" * 600 + "a", "x" * 600 + "b", "usmf|\x00é"
    store.remember("CustomersV3", [change(long_a, "c", name="A"), change(long_b, "c", name="B"),
                                   change(odd, "c", name="O")])
    await store.commit("CustomersV3")
    again = reopened(store, path)
    assert [again.get("CustomersV3", k) for k in (long_a, long_b, odd)] == [
        {"k": long_a, "name": "A"}, {"k": long_b, "name": "B"}, {"k": odd, "name": "O"}]


async def test_a_full_store_grows_and_keeps_every_image(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(images, "_MAP_SIZE", 64 * 1024)  # a few pages: the commit fills it
    path = tmp_path / "images.lmdb"
    store = ImageStore(path)
    store.remember("CustomersV3", [change(f"r{n}", "r", name="x" * 200) for n in range(2000)])
    await store.commit("CustomersV3")
    again = reopened(store, path)
    assert all(again.get("CustomersV3", f"r{n}") == {"k": f"r{n}", "name": "x" * 200} for n in range(2000))


async def test_an_image_json_cannot_hold_is_forgotten_and_the_rest_kept(tmp_path: Path) -> None:
    """A lone surrogate (valid in a JSON text, not in UTF-8): its event was dead-lettered, its
    image must not fail the page's commit, and no older image of the record survives it."""
    store = ImageStore(tmp_path / "images.lmdb")
    store.remember("CustomersV3", [change("a", "c", name="A")])
    await store.commit("CustomersV3")
    store.remember("CustomersV3", [change("a", "u", name="\ud800"), change("b", "c", name="B")])
    await store.commit("CustomersV3")
    assert store.get("CustomersV3", "a") is None
    assert store.get("CustomersV3", "b") == {"k": "b", "name": "B"}


WRITER = """
import asyncio, sys
from pathlib import Path
from connectors.common.images import ImageStore
from connectors.common.source import Change
from topics import ChangeEvent, Source
store = ImageStore(Path(sys.argv[1]))
source = Source(system="finance", table="CustomersV3", version="1", ts_ms=1)
store.remember("CustomersV3", [Change("b", ChangeEvent(after={"k": "b"}, op="r", ts_ms=1, source=source))])
asyncio.run(store.commit("CustomersV3"))
"""


async def test_two_processes_write_one_store(tmp_path: Path) -> None:
    """`dualwrite initial-sync` writes the images of a running source's store: each sees the other's."""
    path = tmp_path / "images.lmdb"
    store = ImageStore(path)
    store.remember("CustomersV3", [change("a", "c", name="A")])
    await store.commit("CustomersV3")
    other = subprocess.run([sys.executable, "-c", WRITER, str(path)], capture_output=True, text=True, timeout=60)
    assert other.returncode == 0, other.stderr
    assert store.get("CustomersV3", "b") == {"k": "b"}  # written by the other process, store still open
    assert store.get("CustomersV3", "a") == {"k": "a", "name": "A"}


async def test_the_sqlite_store_of_an_earlier_version_is_imported_once(tmp_path: Path) -> None:
    legacy = tmp_path / "sources" / "finance-images.sqlite"
    legacy.parent.mkdir()
    db = sqlite3.connect(legacy)
    db.execute("CREATE TABLE images (tbl TEXT NOT NULL, rec TEXT NOT NULL, image BLOB NOT NULL, "
               "PRIMARY KEY (tbl, rec)) WITHOUT ROWID")
    db.executemany("INSERT INTO images VALUES (?, ?, ?)", [
        ("CustomersV3", "usmf|C-1", b'{"k":"C-1","name":"One"}'), ("ProjectsV2", "usmf|P-1", b'{"k":"P-1"}')])
    db.commit()
    db.close()
    store = ImageStore(legacy.with_suffix(".lmdb"))
    assert store.get("CustomersV3", "usmf|C-1") == {"k": "C-1", "name": "One"}
    assert store.get("ProjectsV2", "usmf|P-1") == {"k": "P-1"}
    assert not legacy.exists() and legacy.with_name(legacy.name + ".imported").is_file()


async def test_a_store_that_holds_images_is_never_overwritten_by_an_old_one(tmp_path: Path) -> None:
    """The source and an initial sync starting together both find the old file: the second
    must not write its stale images over what the first has emitted since."""
    path = tmp_path / "finance-images.lmdb"
    store = ImageStore(path)
    store.remember("CustomersV3", [change("a", "u", name="new")])
    await store.commit("CustomersV3")
    store.close()
    legacy = path.with_suffix(".sqlite")
    db = sqlite3.connect(legacy)
    db.execute("CREATE TABLE images (tbl TEXT NOT NULL, rec TEXT NOT NULL, image BLOB NOT NULL, "
               "PRIMARY KEY (tbl, rec)) WITHOUT ROWID")
    db.execute("INSERT INTO images VALUES ('CustomersV3', 'a', '{\"k\":\"a\",\"name\":\"old\"}')")
    db.commit()
    db.close()
    assert ImageStore(path).get("CustomersV3", "a") == {"k": "a", "name": "new"}
    assert not legacy.exists()


def test_an_import_larger_than_the_map_is_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """One transaction, done again in a grown map: never half an import (a crash half-way
    leaves the new store empty, so the next start imports again)."""
    monkeypatch.setattr(images, "_MAP_SIZE", 64 * 1024)
    legacy = tmp_path / "finance-images.sqlite"
    db = sqlite3.connect(legacy)
    db.execute("CREATE TABLE images (tbl TEXT NOT NULL, rec TEXT NOT NULL, image BLOB NOT NULL, "
               "PRIMARY KEY (tbl, rec)) WITHOUT ROWID")
    db.executemany("INSERT INTO images VALUES (?, ?, ?)",
                   [("CustomersV3", f"r{n}", b'{"name":"' + b"x" * 200 + b'"}') for n in range(2000)])
    db.commit()
    db.close()
    store = ImageStore(legacy.with_suffix(".lmdb"))
    assert all(store.get("CustomersV3", f"r{n}") == {"name": "x" * 200} for n in range(2000))


@pytest.mark.parametrize("name", ["images.lmdb", "images.sqlite"])
def test_a_file_that_is_no_store_is_a_typed_error_saying_what_to_do(name: str, tmp_path: Path) -> None:
    """The store itself, or an earlier version's beside it, that cannot be read."""
    junk = tmp_path / name
    junk.write_bytes(b"this is not a database" * 100)
    with pytest.raises(ImageStoreError, match=r"cannot be read|not a usable store of before images") as caught:
        ImageStore(tmp_path / "images.lmdb")
    assert "move it away" in str(caught.value)
