import asyncio

import pytest

from streams.factview import FactView

pytestmark = pytest.mark.unit


def test_a_versioned_fact_is_replaced_only_by_a_version_at_least_as_new():
    view = FactView()
    view.learn("row:a", {"n": "v5"}, 5)
    view.learn("row:a", {"n": "v4"}, 4)  # the gate hearing a row late
    assert view.get("row:a") == {"n": "v5"}
    view.learn("row:a", {"n": "v6"}, 6)
    assert view.get("row:a") == {"n": "v6"}


def test_an_unversioned_fact_follows_the_gates_order():
    view = FactView()
    view.learn("present:P", {"target_id": "1"}, None)
    view.learn("present:P", {"target_id": "2"}, None)
    assert view.get("present:P") == {"target_id": "2"}
    view.forget("present:P")
    assert view.get("present:P") is None


def test_a_fact_read_back_only_fills_a_gap():
    view = FactView()
    view.fill("row:a", {"n": "read"})
    assert view.get("row:a") == {"n": "read"}
    view.learn("row:a", {"n": "v1"}, 1)
    view.fill("row:a", {"n": "read again"})
    assert view.get("row:a") == {"n": "v1"}


def test_the_view_is_bounded_and_can_be_emptied():
    view = FactView(max_facts=2)
    for i in range(3):
        view.learn(f"row:{i}", {"i": i}, i)
    assert len(view) == 2 and view.get("row:0") is None and view.get("row:2") == {"i": 2}
    view.clear()
    assert len(view) == 0 and view.get("row:2") is None


def test_filling_from_the_table_gives_the_loop_a_turn_and_stops_when_full():
    view = FactView(max_facts=25)
    turns: list[int] = []

    async def other() -> None:  # a heartbeat, the producer's sender: anything else on the loop
        while True:
            turns.append(len(view))
            await asyncio.sleep(0)

    async def main() -> int:
        task = asyncio.create_task(other())
        await asyncio.sleep(0)
        read = await view.fill_from(((f"row:{i}", {"i": i} if i != 3 else None) for i in range(100)), every=10)
        task.cancel()
        return read

    assert asyncio.run(main()) == 26  # the 26th fact filled it (one row was not a fact)
    assert len(view) == 25 and view.get("row:3") is None and view.get("row:25") == {"i": 25}
    assert 9 in turns and 19 in turns  # the other task ran after each ten read, not only at the end


def test_a_revocation_during_a_fill_ends_it():
    view = FactView()

    async def main() -> int:
        fill = asyncio.create_task(view.fill_from(((f"row:{i}", {"i": i}) for i in range(100)), every=10))
        while len(view) < 10:
            await asyncio.sleep(0)
        view.clear()  # partitions revoked while the fill gave the loop a turn
        return await fill

    assert asyncio.run(main()) == 10
    assert len(view) == 0  # none of the facts read after it, which may be owned elsewhere now


def test_the_view_read_with_versions():
    view = FactView()
    view.learn("key:projects:p", {"ProjectId": "PRJ-2"}, 8)
    view.fill("present:P", {"target_id": "1"})
    assert view.versioned.get("key:projects:p") == ({"ProjectId": "PRJ-2"}, 8)
    assert view.versioned.get("present:P") == ({"target_id": "1"}, -1)
    assert view.versioned.get("row:missing") is None
