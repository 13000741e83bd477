from typing import Any

import orjson
import pytest

from streams.gate import (
    CHUNK_ITEMS,
    KEEP_RELEASES,
    Write,
    count_event,
    forget,
    is_waiting,
    park,
    release,
    released_at,
    waiting_in,
)

pytestmark = pytest.mark.unit

KEY = "present:ProjectsV2(ProjectId='P1',dataAreaId='usmf')"


def item(i: str, pad: int = 0) -> dict[str, Any]:
    return {"id": i, "parked_ms": 1, **({"row": {"x": "y" * pad}} if pad else {})}


class Table(dict[str, Any]):
    """The ``parked`` table as the gatekeeper leaves it: the writes applied in order."""

    def apply(self, writes: list[Write]) -> list[Write]:
        for key, value in writes:
            if value is None:
                self.pop(key, None)
            else:
                self[key] = value
        return writes

    def park(self, *items: dict[str, Any], offset: int, key: str = KEY) -> list[str]:
        writes, added = park(key, list(items), offset, self.get)
        self.apply(writes)
        return [str(i["id"]) for i in added]

    def release(self, offset: int, key: str = KEY) -> list[str]:
        writes, out = release(key, offset, self.get)
        self.apply(writes)
        return [str(i["id"]) for i in out]

    def waiting(self, key: str = KEY) -> list[str]:
        return [str(i["id"]) for k, i in waiting_in(self) if k == key]


def encoded(value: Any) -> int:
    return len(orjson.dumps(value))


def test_park_then_release_all_waiters_in_order():
    t = Table()
    assert t.park(item("task-1"), offset=1) == ["task-1"]
    t.park(item("task-2"), offset=2)
    assert t.release(offset=40) == ["task-1", "task-2"]
    assert t.waiting() == [] and not is_waiting(KEY, t.get)


def test_park_is_idempotent():
    t = Table()
    t.park(item("a"), offset=1)
    assert t.park(item("a"), offset=1) == []
    assert t.waiting() == ["a"]


def test_release_without_waiters_changes_nothing():
    t = Table()
    assert t.apply(release(KEY, 3, t.get)[0]) == [] and t.release(offset=3) == [] and t == {}


def test_replayed_release_record_sends_the_same_items_again():
    t = Table()
    t.park(item("a"), offset=1)
    first = t.release(offset=7)
    assert released_at(KEY, 7, t.get)
    assert t.release(offset=7) == first == ["a"]


def test_replayed_park_after_release_does_not_park_again():
    t = Table()
    t.park(item("a"), offset=5)
    t.release(offset=7)
    assert t.park(item("a"), offset=5) == []  # the park record, delivered again after a crash
    assert t.waiting() == []


def test_a_change_released_and_parked_again_later_waits_again():
    """A resumed map releases its parked changes; one fails again and pauses the map again
    while the resume is handled: it must wait in the slot again, not vanish (issue 9 review)."""
    t = Table()
    t.park(item("a"), offset=5)
    t.release(offset=7)
    assert t.park(item("a"), offset=7) == ["a"]  # parked again by the releasing record itself
    assert t.waiting() == ["a"]
    assert t.release(offset=9) == ["a"]


def test_later_waiters_released_by_a_later_fact():
    t = Table()
    t.park(item("a"), offset=1)
    t.release(offset=7)
    t.park(item("b"), offset=8)
    assert t.release(offset=9) == ["b"]


def test_transaction_events_are_counted_once_and_survive_a_release():
    t = Table()
    key = "tx:dataverse:tx1"

    def count(event: str) -> int:
        writes, seen = count_event(key, event, t.get)
        t.apply(writes)
        return seen

    assert count("dataverse:msdyn_projects:p1:7") == 1
    assert count("dataverse:msdyn_projects:p1:7") == 1  # delivered again
    assert count("dataverse:msdyn_projecttasks:t1:8") == 2
    t.park(item("task-1"), offset=2, key=key)
    assert t.release(offset=3, key=key) == ["task-1"]
    assert count("dataverse:msdyn_projecttasks:t1:8") == 2
    assert count("dataverse:msdyn_projecttasks:t2:8") == 3


def test_an_event_count_lost_in_a_crash_is_taken_back_from_its_marker_not_counted_twice():
    t = Table()
    key = "tx:dataverse:tx1"
    writes, _ = count_event(key, "e1", t.get)
    assert [k for k, _ in writes] == [f"{key}\x00o1", f"{key}\x00ee1", key]  # ordinal, marker, count
    t.apply(writes[:2])  # the marker survived, the slot's count did not
    assert count_event(key, "e1", t.get)[1] == 1


def test_every_prefix_of_a_park_cut_short_by_a_crash_is_repaired_by_its_replay():
    for full in (False, True):  # the open chunk has room / the park opens a new chunk
        before = Table()
        for n in range(CHUNK_ITEMS if full else 3):
            before.park(item(f"w{n}"), offset=n)
        writes, _ = park(KEY, [item("new")], 500, before.get)
        for cut in range(len(writes) + 1):
            t = Table(before)
            t.apply(writes[:cut])
            t.park(item("new"), offset=500)  # the record handled again
            assert t.waiting().count("new") == 1, (full, cut)
            assert t.park(item("new"), offset=500) == []
            assert t.release(offset=600)[-1] == "new"


def test_every_prefix_of_a_release_cut_short_by_a_crash_sends_the_same_items_on_replay():
    before = Table()
    for r in range(KEEP_RELEASES):  # the next release forgets the oldest
        before.park(item(f"old{r}"), offset=10 * r)
        before.release(offset=10 * r + 1)
    for n in range(2 * CHUNK_ITEMS + 5):
        before.park(item(f"w{n}"), offset=1_000 + n)
    writes, items = release(KEY, 5_000, before.get)
    assert [i["id"] for i in items] == [f"w{n}" for n in range(2 * CHUNK_ITEMS + 5)]
    for cut in range(len(writes) + 1):
        t = Table(before)
        t.apply(writes[:cut])
        assert t.release(offset=5_000) == [i["id"] for i in items], cut
        assert t == _released(before, writes)


def _released(before: Table, writes: list[Write]) -> Table:
    t = Table(before)
    t.apply(writes)
    return t


def test_a_forgotten_release_takes_its_chunks_and_index_entries_with_it():
    t = Table()
    for r in range(KEEP_RELEASES + 3):
        t.park(item(f"a{r}"), offset=10 * r)
        t.release(offset=10 * r + 1)
    assert len([k for k in t if "\x00c" in k]) == KEEP_RELEASES
    assert len([k for k in t if "\x00i" in k]) == KEEP_RELEASES
    assert t.release(offset=1) == []  # too old to be remembered, as before


def test_twenty_thousand_waiting_items_keep_every_value_small_and_every_park_the_same_size():
    """A slot used to be one JSON value with every item: past Kafka's 1 MB message limit with a
    few thousand waiting (the worker crash-looped), and rewritten whole on every park."""
    t = Table()
    per_park = []
    for n in range(20_000):
        writes, added = park(KEY, [item(f"actuals:a{n}:1", pad=100)], n, t.get)
        assert len(added) == 1
        sizes = [encoded(v) for _, v in t.apply(writes) if v is not None]
        assert max(sizes) < 64_000
        per_park.append(sum(sizes))
    # the same per park at 20,000 waiting as at 100 (ids a few digits longer), and bounded
    assert max(per_park[-CHUNK_ITEMS:]) <= max(per_park[:CHUNK_ITEMS]) * 1.05
    assert max(per_park) < 64_000
    assert len(t.waiting()) == 20_000
    writes, out = release(KEY, 30_000, t.get)
    assert all(encoded(v) < 64_000 for _, v in t.apply(writes) if v is not None)
    assert [i["id"] for i in out] == [f"actuals:a{n}:1" for n in range(20_000)]
    assert t.waiting() == []


def test_many_items_parked_by_one_record_fill_chunks_in_order_and_a_replay_adds_none():
    t = Table()
    items = [item(f"m{n}") for n in range(2 * CHUNK_ITEMS + 50)]
    writes, added = park(KEY, items, 4, t.get)
    t.apply(writes)
    assert len(added) == len(items) and t.waiting() == [i["id"] for i in items]
    assert all(k == KEY or k.startswith(KEY + "\x00") for k, _ in writes)  # the slot's partition
    assert sum(1 for k, _ in writes if "\x00c" in k) == 3  # each chunk written once
    assert t.park(*items, offset=4) == []


def test_an_item_larger_than_a_chunk_gets_a_chunk_of_its_own():
    t = Table()
    t.park(item("small"), offset=1)
    t.park(item("big", pad=60_000), offset=2)
    t.park(item("after"), offset=3)
    assert t.waiting() == ["small", "big", "after"]
    assert [len(v["items"]) for k, v in sorted(t.items()) if "\x00c" in k] == [1, 1, 1]


def test_a_slot_of_the_old_layout_is_read_and_rewritten():
    """A changelog written before the chunked layout: its waiting items are chunk 0 (after its
    releases), its releases still replay, its events still count once."""
    old = {"waiting": [item("b"), item("c")], "released": [{"offset": 7, "items": [item("a")]}],
           "events": ["e1", "e2"]}
    t = Table({KEY: old})
    assert t.waiting() == ["b", "c"]
    assert t.park(item("b"), offset=9) == [] and t.park(item("a"), offset=6) == []
    assert t[KEY]["v"] == 2 and "waiting" not in t[KEY]
    assert t.release(offset=7) == ["a"]
    assert count_event(KEY, "e2", t.get)[1] == 2
    assert t.release(offset=11) == ["b", "c"]
    assert released_at(KEY, 11, Table({KEY: old}).get) is False


# -- forgetting a released slot ----------------------------------------------------------------
TX = "tx:finance:4711"


def a_released_transaction(events: int = 3) -> Table:
    """A transaction's slot as its release left it: every event counted, its items released by
    the gate record at offset 50."""
    t = Table()
    for n in range(events):
        t.apply(count_event(TX, f"finance:ProjectsV2:P{n}:7", t.get)[0])
        t.park(item(f"projects:P{n}:7"), offset=10 + n, key=TX)
    assert t.release(offset=50, key=TX) == [f"projects:P{n}:7" for n in range(events)]
    return t


def test_a_released_transaction_is_forgotten_whole():
    t = a_released_transaction()
    t["present:other"] = {"v": 2, "head": 0, "tail": 0, "events": 0, "released": []}  # not its key
    assert len([k for k in t if k.startswith(TX)]) == 1 + 1 + 3 + 3 + 3  # slot, chunk, index, markers, ordinals
    t.apply(forget(TX, 50, t.get))
    assert sorted(t) == ["present:other"]
    assert forget(TX, 50, t.get) == []  # noted twice: nothing left the second time


def test_a_transaction_that_left_nothing_waiting_is_forgotten_too():
    t = Table()
    t.apply(count_event(TX, "finance:filtered:1", t.get)[0])  # its only change was filtered out
    t.apply(forget(TX, 9, t.get))
    assert dict(t) == {}


def test_a_slot_is_not_forgotten_while_something_waits_or_after_a_later_release():
    t = a_released_transaction()
    t.park(item("projects:late:8"), offset=60, key=TX)  # a straggler waits again
    assert forget(TX, 50, t.get) == []
    assert t.release(offset=70, key=TX) == ["projects:late:8"]
    assert forget(TX, 50, t.get) == []  # released again since: the later note forgets it
    t.apply(forget(TX, 70, t.get))
    assert not [k for k in t if k.startswith(TX)]


def test_every_prefix_of_a_forget_cut_short_by_a_crash_is_finished_by_doing_it_again():
    whole = a_released_transaction(events=5)
    writes = forget(TX, 50, whole.get)
    for cut in range(len(writes) + 1):
        t = Table(whole)
        t.apply(writes[:cut])
        t.apply(forget(TX, 50, t.get))
        assert dict(t) == {}, cut


def test_every_prefix_of_an_event_count_cut_short_by_a_crash_still_leaves_a_slot_forget_can_clear():
    first = Table()
    first.apply(count_event(TX, "e0", first.get)[0])
    writes, _ = count_event(TX, "e1", first.get)
    for cut in range(len(writes) + 1):
        t = Table(first)
        t.apply(writes[:cut])
        t.apply(count_event(TX, "e1", t.get)[0])  # the record handled again
        assert count_event(TX, "e1", t.get)[1] == 2
        t.apply(forget(TX, 1, t.get))
        assert dict(t) == {}, cut  # every marker has its ordinal entry: none is left behind
