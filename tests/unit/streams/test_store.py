"""`streams.store`: the batch engine's tables over real RocksDB files, in Faust's layout."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from streams import StreamsConfig, create_app
from streams.store import OFFSET_KEY, Stores, db_path

pytestmark = pytest.mark.unit


def _stores(tmp_path: Path) -> Stores:
    return Stores(("facts", "versions"), tmp_path, lambda t: f"app-{t}-changelog")


def test_a_write_is_read_back_in_its_batch_and_reaches_rocksdb_only_when_persisted(tmp_path: Path) -> None:
    stores = _stores(tmp_path)
    stores.open(0)
    facts = stores["facts"]
    stores.at(0)
    facts["row:a"] = {"name": "A"}
    assert facts["row:a"] == {"name": "A"} and facts.get("row:a") == {"name": "A"}
    assert facts.dbs[0].get(orjson.dumps("row:a")) is None  # not before the commit
    stores.persist({("app-facts-changelog", 0): 41})
    assert orjson.loads(facts.dbs[0].get(orjson.dumps("row:a"))) == {"name": "A"}
    assert stores.open(0) == {"facts": 41, "versions": None}
    assert stores.pending() == 0


def test_a_dropped_batch_leaves_nothing(tmp_path: Path) -> None:
    stores = _stores(tmp_path)
    stores.open(0)
    stores.at(0)
    stores["facts"]["row:a"] = {"name": "A"}
    stores.drop()
    assert stores["facts"].get("row:a") is None and stores.changelog() == []
    stores.persist({})
    assert list(stores["facts"].items()) == []


def test_reads_and_writes_are_of_the_current_partition_only(tmp_path: Path) -> None:
    stores = _stores(tmp_path)
    stores.open(0)
    stores.open(1)
    facts = stores["facts"]
    stores.at(1)
    facts["k"] = {"p": 1}
    stores.at(0)
    assert facts.get("k") is None and "k" not in facts
    with pytest.raises(KeyError):
        facts["k"]
    stores.persist({})
    assert facts.get("k") is None
    stores.at(1)
    assert facts["k"] == {"p": 1}


def test_the_changelog_holds_each_keys_last_write_in_its_partition_and_a_delete_as_none(tmp_path: Path) -> None:
    stores = _stores(tmp_path)
    stores.open(0)
    stores.open(2)
    stores.at(2)
    stores["facts"]["k"] = {"v": 1}
    stores["facts"]["k"] = {"v": 2}
    stores["facts"]["gone"] = {"v": 0}
    assert stores["facts"].pop("gone") == {"v": 0}
    stores.at(0)
    stores["versions"]["dataverse:t:1"] = {"version": 7, "offset": 3}
    assert sorted(stores.changelog()) == sorted([
        ("app-facts-changelog", 2, b'"k"', b'{"v":2}'),
        ("app-facts-changelog", 2, b'"gone"', None),
        ("app-versions-changelog", 0, b'"dataverse:t:1"', b'{"version":7,"offset":3}'),
    ])
    stores.persist({("app-facts-changelog", 2): 9, ("app-versions-changelog", 0): 4})
    stores.at(2)
    assert stores["facts"].get("gone") is None and stores["facts"]["k"] == {"v": 2}
    assert stores.open(2)["facts"] == 9 and stores.open(0)["versions"] == 4


def test_recovery_applies_changelog_records_with_their_last_offset(tmp_path: Path) -> None:
    stores = _stores(tmp_path)
    stores.open(1)
    stores.apply("facts", 1, [(b'"a"', b'{"x":1}', 10), (b'"b"', b'{"x":2}', 11), (b'"a"', None, 12)])
    stores.at(1)
    assert stores["facts"].get("a") is None and stores["facts"]["b"] == {"x": 2}
    assert stores.open(1)["facts"] == 12
    assert dict(stores["facts"].items()) == {"b": {"x": 2}}  # the offset key is not a row


def test_state_survives_closing_and_opening_again(tmp_path: Path) -> None:
    stores = _stores(tmp_path)
    stores.open(0)
    stores.at(0)
    stores["facts"]["k"] = {"v": 1}
    stores.persist({("app-facts-changelog", 0): 0})
    stores.close()
    again = _stores(tmp_path)
    assert again.open(0)["facts"] == 0
    again.at(0)
    assert again["facts"]["k"] == {"v": 1}


def test_the_layout_is_fausts_so_either_engine_opens_the_others_state(tmp_path: Path) -> None:
    app = create_app(StreamsConfig(app_id="unit-store", data_dir=tmp_path))
    table = app.runtime.table("versions")
    assert table.data.partition_path(2) == db_path(app.conf.tabledir, "versions", 2)
    assert app.conf.tabledir == tmp_path / "v1" / "tables"
    assert table.data.offset_key == OFFSET_KEY
    assert table.changelog_topic.get_topic_name() == "unit-store-versions-changelog"
