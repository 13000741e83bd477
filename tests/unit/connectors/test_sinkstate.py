from __future__ import annotations

from dataclasses import dataclass

import pytest

from connectors.common.sinkstate import (
    AppliedState,
    CommitLedger,
    coalesce,
    commit_offsets,
    release,
    units,
)
from tests.unit.connectors.fakes import applied, command
from topics import Command, encode

pytestmark = pytest.mark.unit


def test_last_write_wins_per_record() -> None:
    a1, b1, a2, a3 = command("A", 1), command("B", 1), command("A", 2), command("A", 3)
    winners, superseded = coalesce([a1, b1, a2, a3])
    assert winners == [b1, a3]
    assert superseded == [a1, a2]


def test_delete_supersedes_pending_upserts() -> None:
    upsert, delete = command("A", 4), command("A", 5, op="delete")
    winners, superseded = coalesce([upsert, delete])
    assert winners == [delete] and superseded == [upsert]


def test_a_stale_redelivery_never_beats_a_newer_version() -> None:
    new, stale = command("A", 7), command("A", 6)
    assert coalesce([new, stale])[0] == [new]


def test_a_partial_winner_keeps_the_fields_of_the_upserts_it_supersedes() -> None:
    # Regression (chaos run, two-way project name): a rename to the same name left the name
    # out of the newest command; last-write-wins then created the Finance project without one.
    created = command("A", 1, fields={"ProjectName": "Rollout", "ProjectStage": "InProcess"})
    renamed = command("A", 2, fields={"ProjectName": "Rollout rev 2", "ProjectStage": "InProcess"})
    same_name = command("A", 3, fields={"ProjectStage": "InProcess"})
    (winner,), superseded = coalesce([created, renamed, same_name])
    assert winner.command_id == same_name.command_id and superseded == [created, renamed]
    assert winner.fields == {"ProjectName": "Rollout rev 2", "ProjectStage": "InProcess"}
    full = command("B", 2)
    assert coalesce([command("B", 1), full])[0][0] is full  # nothing to take over: untouched


def test_fields_before_a_delete_are_not_carried_over() -> None:
    before = command("A", 1, fields={"ProjectName": "Old", "ProjectStage": "InProcess"})
    delete = command("A", 2, op="delete")
    recreated = command("A", 3, fields={"ProjectStage": "Finished"})
    (winner,), _ = coalesce([before, delete, recreated])
    assert winner.fields == {"ProjectStage": "Finished"}


def test_skip_at_or_below_applied_version() -> None:
    state = AppliedState()
    state.record(applied(command("A", 5)))
    assert state.skip_reason(command("A", 4, fields={"ProjectName": "other"})) == "applied_version"
    assert state.skip_reason(command("A", 5, fields={"ProjectName": "other"})) == "applied_version"
    assert state.skip_reason(command("A", 6, fields={"ProjectName": "other"})) is None
    assert state.skip_reason(command("B", 1)) is None


def test_skip_when_fingerprint_equals_last_applied() -> None:
    state = AppliedState()
    state.record(applied(command("A", 5, fingerprint="same")))
    assert state.skip_reason(command("A", 9, fingerprint="same")) == "unchanged"
    # a delete with an equal fingerprint is still a different effect
    assert state.skip_reason(command("A", 9, op="delete", fingerprint="same")) is None


def test_state_rebuilt_from_compacted_records_keeps_highest_version() -> None:
    older, newer = applied(command("A", 2)), applied(command("A", 3))
    state = AppliedState()
    bad = state.load({b"A": encode(newer), b"A-old": encode(older), b"X": b"not json", b"T": None})
    assert bad == 1 and len(state) == 1
    got = state.get(newer.record_key)
    assert got is not None and got.source_version == 3


def test_transaction_members_form_one_unit_in_order() -> None:
    h = command("H", 1, txid="t1", tx_size=2)
    x = command("X", 1)
    line = command("L", 1, txid="t1", tx_size=2)
    solo_tx = command("S", 1, txid="t2", tx_size=1)
    assert units([h, x, line, solo_tx]) == [[h, line], [x], [solo_tx]]


def test_a_change_set_follows_the_source_transaction_order_not_arrival() -> None:
    # Members arrive from different partitions: the tasks may come before their project.
    task_2 = command("T2", 1, txid="t1", tx_size=3).model_copy(update={"tx_order": 3})
    task_1 = command("T1", 1, txid="t1", tx_size=3).model_copy(update={"tx_order": 2})
    project = command("P", 1, txid="t1", tx_size=3).model_copy(update={"tx_order": 1})
    unordered = command("U", 1, txid="t1", tx_size=3)
    assert units([task_2, unordered, task_1, project]) == [[project, task_1, task_2, unordered]]


@dataclass
class Rec:
    command: Command | None
    arrived: float
    position: tuple[str, int, int]
    not_before: float = 0.0


def test_incomplete_transaction_is_held_until_complete_or_timed_out() -> None:
    h = Rec(command("H", 1, txid="t1", tx_size=2), 10.0, ("c", 0, 5))
    x = Rec(command("X", 1), 10.0, ("c", 0, 6))
    ready, held = release([h, x], now=11.0, wait_s=30.0)
    assert ready == [x] and held == [h]
    line = Rec(command("L", 1, txid="t1", tx_size=2), 12.0, ("c", 1, 3))
    ready, held = release([*held, line], now=12.0, wait_s=30.0)
    assert ready == [h, line] and held == []
    lonely = Rec(command("Q", 1, txid="t9", tx_size=3), 10.0, ("c", 2, 0))
    assert release([lonely], now=40.1, wait_s=30.0) == ([lonely], [])  # waited long enough


def test_a_hold_keeps_a_transaction_past_its_wait_until_the_parked_member_comes() -> None:
    """A vendor invoice line parked for its unit: the header does not land alone after
    ``wait_s``; it goes with the line. The hold itself is never counted as a member."""
    header = Rec(command("H", 1, txid="t1", tx_size=2), 10.0, ("c", 0, 5))
    hold = Rec(command("L", 1, op="hold", fields={}, txid="t1", tx_size=2), 10.2, ("c", 1, 3))
    ready, held = release([header, hold], now=500.0, wait_s=30.0)
    assert ready == [] and held == [header, hold]
    line = Rec(command("L", 1, txid="t1", tx_size=2), 600.0, ("c", 1, 9))
    ready, held = release([*held, line], now=600.0, wait_s=30.0)
    assert ready == [header, hold, line] and held == []
    # A hold that came long after its members were written holds nothing for ever: alone, it
    # waits like a member, and the late member goes after ``wait_s`` as before.
    late_hold = Rec(command("M", 1, op="hold", fields={}, txid="t3", tx_size=2), 10.0, ("c", 1, 4))
    assert release([late_hold], now=40.1, wait_s=30.0) == ([late_hold], [])
    member = Rec(command("N", 1, txid="t4", tx_size=2), 100.0, ("c", 0, 7))
    stale_hold = Rec(command("N2", 1, op="hold", fields={}, txid="t4", tx_size=2), 10.0, ("c", 1, 5))
    assert release([stale_hold, member], now=131.0, wait_s=30.0) == ([stale_hold, member], [])


def test_a_deferred_write_waits_for_its_time_unless_a_newer_command_for_its_record_came() -> None:
    parent = Rec(command("P", 1, op="delete"), 10.0, ("c", 0, 5), not_before=12.0)
    other = Rec(command("X", 1), 11.0, ("c", 0, 6))
    assert release([parent, other], now=11.0, wait_s=30.0) == ([other], [parent])
    assert release([parent], now=12.0, wait_s=30.0) == ([parent], [])  # its time has come
    again = Rec(command("P", 2), 11.5, ("c", 0, 8))  # the record written again meanwhile
    assert release([parent, again], now=11.5, wait_s=30.0) == ([parent, again], [])


def test_commits_never_pass_a_held_record() -> None:
    ledger = CommitLedger()
    ledger.finish([Rec(None, 0, ("c", 0, 5)), Rec(None, 0, ("c", 0, 9)), Rec(None, 0, ("c", 1, 2))])
    held = [Rec(None, 0, ("c", 0, 7)), Rec(None, 0, ("c", 2, 4))]
    assert commit_offsets(ledger.done, held) == {("c", 0): 7, ("c", 1): 3}
    # Once the held record is released, past everything finished meanwhile, not just past it.
    ledger.finish([Rec(None, 0, ("c", 0, 7))])
    assert commit_offsets(ledger.done, [Rec(None, 0, ("c", 2, 4))]) == {("c", 0): 10, ("c", 1): 3}


def test_commits_pass_the_transaction_markers_the_consumer_passed_but_never_a_held_record() -> None:
    """A transactional producer's last record is followed by its commit marker: the consumer's
    position passes it, no record's offset does, and the group would stay one short."""
    ledger = CommitLedger()
    ledger.finish([Rec(None, 0, ("c", 0, 9)), Rec(None, 0, ("c", 1, 2))])
    positions = {("c", 0): 11, ("c", 1): 3, ("c", 2): 6}
    held = [Rec(None, 0, ("c", 2, 4))]
    assert commit_offsets(ledger.done, held, positions) == {("c", 0): 11, ("c", 1): 3, ("c", 2): 4}
    assert commit_offsets(ledger.done, [], {("c", 0): 4}) == {("c", 0): 10, ("c", 1): 3}  # never back


def test_an_unconfirmed_commit_is_due_again_until_the_group_confirms_it() -> None:
    ledger = CommitLedger(resend_after_s=5.0)
    p0, p1 = ("sync.commands.finance", 0), ("sync.commands.finance", 1)
    ledger.sent({p0: 45, p1: 10}, now=100.0)
    ledger.confirm(p1, 10)
    assert ledger.due(104.0, {p0, p1}) == {}  # not yet: the answer may still come
    assert ledger.due(105.0, {p0, p1}) == {p0: 45}  # refused or lost: sent again
    ledger.sent({p0: 42}, now=106.0)  # an older offset never replaces a newer one
    ledger.confirm(p0, 45)
    assert ledger.due(200.0, {p0, p1}) == {}
    ledger.sent({p1: 9}, now=201.0)  # below what the group holds: nothing to do
    assert ledger.wanted == {}


def test_a_partition_no_longer_assigned_is_not_committed_from_here() -> None:
    ledger = CommitLedger(resend_after_s=0.0)
    p0 = ("sync.commands.finance", 0)
    ledger.sent({p0: 45}, now=0.0)
    assert ledger.due(1.0, set()) == {}
    assert ledger.due(2.0, {p0}) == {}  # forgotten, even once it comes back
