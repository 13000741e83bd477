import pytest

from streams.echo import (
    Echo,
    Edit,
    NoSync,
    TargetState,
    classify,
    is_noop,
    is_stale,
    on_ack,
    on_observed,
    on_sent,
    on_unchanged,
)
from topics import CommandSource

pytestmark = pytest.mark.unit

WRITTEN = {"accountnumber": "US-001", "name": "Adatum", "msdyn_customergroupid": "30"}
TWO_WAY = ("name",)
SOURCE = CommandSource(system="finance", table="CustomersV3", id="usmf|US-001", version=1, ts_ms=0)


def version(n: int, record_id: str = "usmf|US-001") -> CommandSource:
    return SOURCE.model_copy(update={"version": n, "id": record_id})


def test_our_write_coming_back_is_an_echo():
    state = on_sent(TargetState(), "customers:1:1", WRITTEN, SOURCE)
    assert classify(state, dict(WRITTEN), TWO_WAY) == Echo()


def test_acknowledged_fingerprint_is_an_echo_too():
    from streams.fingerprint import fingerprint

    state = on_ack(TargetState(), "x", fingerprint(WRITTEN), delete=False)
    assert classify(state, dict(WRITTEN), TWO_WAY) == Echo()


def test_human_edit_of_a_two_way_field_flows_back():
    state = on_sent(TargetState(), "c1", WRITTEN, SOURCE)
    assert classify(state, {**WRITTEN, "name": "Adatum Corp"}, TWO_WAY) == Edit(("name",))


def test_edit_of_a_one_way_field_does_not_sync():
    state = on_sent(TargetState(), "c1", WRITTEN, SOURCE)
    verdict = classify(state, {**WRITTEN, "msdyn_customergroupid": "99"}, TWO_WAY)
    assert isinstance(verdict, NoSync)


def test_first_sight_of_a_row_never_flows_back():
    assert isinstance(classify(TargetState(), dict(WRITTEN), TWO_WAY), NoSync)


def test_noop_when_target_already_holds_the_values():
    state = on_observed(TargetState(), dict(WRITTEN))
    assert is_noop(state, {"name": "Adatum"}, "next")
    assert not is_noop(state, {"name": "Other"}, "next")
    assert not is_noop(TargetState(), {"name": "Adatum"}, "next")


def test_ack_of_the_last_command_updates_what_the_target_holds():
    state = on_sent(TargetState(), "c1", WRITTEN, SOURCE)
    state = on_ack(state, "c1", "sha256:x", delete=False)
    assert state["current"] == WRITTEN
    gone = on_ack(state, "c1", "sha256:x", delete=True)
    assert "sent" not in gone and "current" not in gone and "applied_fp" not in gone


def test_a_change_older_than_the_last_write_sent_for_its_record_is_stale_even_after_a_delete():
    state = on_sent(TargetState(), "c5", WRITTEN, version(5))
    assert is_stale(state, version(4))  # a parked update, or a delete the key was re-created after
    assert not is_stale(state, version(5))  # a replay or a DLQ retry of the same version
    assert not is_stale(state, version(6))
    assert is_stale(state, version(1, "another record"))  # an older change of the same table
    assert not is_stale(state, version(6, "another record"))  # a newer record took the key
    assert is_stale(state, version(9, "another record"), delete=True)  # the row is not its own
    assert not is_stale(state, version(6), delete=True)
    gone = on_ack(on_sent(state, "c7", {}, version(7)), "c7", "fp", delete=True)
    assert "sent" not in gone and is_stale(gone, version(6))
    assert not is_stale(TargetState(), version(1)) and not is_stale(TargetState(), version(1), delete=True)


def test_a_record_that_freed_a_key_never_undoes_the_record_that_took_it():
    """Fuzz run of issue 8: task A (version 43) held DW-00001/2, was deleted, task B (48) took
    the same WBS id; A's upsert, late from another partition, overwrote B's row and A's delete
    then removed it. Versions of one source table are global, so A's late changes are stale."""
    b_wrote = on_sent(TargetState(), "b48", WRITTEN, version(48, "task-b"))
    assert is_stale(b_wrote, version(43, "task-a"))  # A's late upsert
    assert is_stale(b_wrote, version(45, "task-a"), delete=True)  # A's delete
    other_table = SOURCE.model_copy(update={"version": 1, "id": "x", "table": "other"})
    assert not is_stale(b_wrote, other_table)  # versions of another table do not compare
    colon = on_sent(TargetState(), "c", WRITTEN, version(48, "a:b:c"))
    assert is_stale(colon, version(47, "d:e"))  # ids may hold ':'


def test_a_no_op_write_still_makes_the_row_its_records():
    """Fuzz run of issue 8, second form: task A wrote DW-00001/2 and was deleted; task B took
    the WBS id with the very same values, so B's upsert was a no-op and A stayed the row's last
    writer; A's delete then removed B's row. The no-op now records B as the owner."""
    a_wrote = on_sent(TargetState(), "a44", WRITTEN, version(44, "task-a"))
    b_owns = on_unchanged(a_wrote, version(49, "task-b"))
    assert is_stale(b_owns, version(45, "task-a"), delete=True)
    assert b_owns["sent"] == a_wrote["sent"]  # what the row holds is unchanged


def test_a_record_that_takes_a_deleted_key_with_the_same_values_is_written():
    """Fuzz run of issue 9's first session: task A held DW-00001/2 and was deleted; task B took
    the WBS id with the very same values. Once A's delete was sent, B's upsert is never a no-op:
    not while the delete is in flight, not after its ack, and not after the target's feed showed
    A's row late (the feed and our acks reach the gate by different paths)."""
    a_wrote = on_ack(on_sent(TargetState(), "a44", WRITTEN, version(44, "task-a")), "a44", "fp", delete=False)
    assert is_noop(a_wrote, WRITTEN, "next")  # the row holds A's values
    in_flight = on_sent(a_wrote, "a45", {}, version(45, "task-a"), delete=True)
    assert not is_noop(in_flight, WRITTEN, "next")
    acked = on_ack(in_flight, "a45", "", delete=True)
    assert not is_noop(acked, WRITTEN, "next")
    late = on_observed(acked, dict(WRITTEN))  # the feed's view of A's row from before the delete
    assert not is_noop(late, WRITTEN, "next") and "current" not in late
    assert isinstance(classify(late, dict(WRITTEN), TWO_WAY), NoSync)  # and it is no edit either
    b_wrote = on_sent(late, "b49", WRITTEN, version(49, "task-b"))
    assert not b_wrote.get("deleted") and b_wrote["sent"] == WRITTEN
    b_acked = on_ack(b_wrote, "b49", "fp", delete=False)
    assert is_noop(b_acked, WRITTEN, "next")  # written again: its values count once more


def test_a_delete_on_the_feed_forgets_what_the_row_held():
    state = on_observed(TargetState(), dict(WRITTEN))
    assert is_noop(state, {"name": "Adatum"}, "next")
    gone = on_observed(state, {}, deleted=True)
    assert not is_noop(gone, {"name": "Adatum"}, "next")


def test_a_change_with_the_values_of_the_command_in_flight_is_a_no_op():
    """The ack of a write and the next source change race to the gate (issue 9 review): a
    change carrying what the command in flight writes changes nothing, ack or not."""
    sent = on_sent(TargetState(), "c7", WRITTEN, version(7))
    assert is_noop(sent, WRITTEN, "next") and not is_noop(sent, {**WRITTEN, "name": "Other"}, "next")


def test_the_command_in_flight_replayed_after_a_crash_is_sent_again():
    """CI run of stop 14: the worker was killed after the table's changelog recorded a send
    but before the command reached its topic; the replayed change was taken for a no-op against
    its own command in flight, and three projects were never written."""
    sent = on_sent(TargetState(), "c7", WRITTEN, version(7))
    assert not is_noop(sent, WRITTEN, "c7")
    acked = on_ack(sent, "c7", "fp", delete=False)
    assert is_noop(acked, WRITTEN, "c7")  # the ack proves it landed


def test_once_acked_what_the_target_holds_decides_again():
    acked = on_ack(on_sent(TargetState(), "c7", WRITTEN, version(7)), "c7", "fp", delete=False)
    assert is_noop(acked, WRITTEN, "next")
    edited = on_observed(acked, {**WRITTEN, "msdyn_customergroupid": "40"})  # someone changed it
    assert not is_noop(edited, WRITTEN, "next")  # the source's values are written again


def test_the_echo_of_an_earlier_write_arriving_after_a_later_ack_is_stale_and_changes_nothing():
    """Chaos run: name rev 86 written, then rev 12 written and acked; the feed's echo of rev 86
    came after that ack and was taken as what Finance held, so the source's change back to
    rev 86 was dropped as a no-op and Finance kept rev 12."""
    rev86, rev12 = {**WRITTEN, "name": "rev 86"}, {**WRITTEN, "name": "rev 12"}
    state = on_ack(on_sent(TargetState(), "c1", rev86, version(1)), "c1", "fp86", delete=False)
    state = on_ack(on_sent(state, "c2", rev12, version(2)), "c2", "fp12", delete=False)
    late_echo = dict(rev86)
    assert classify(state, late_echo, TWO_WAY) == Echo(stale=True)  # not an edit to send back
    state = on_observed(state, late_echo)
    assert state["current"] == rev12
    assert not is_noop(state, {"name": "rev 86"}, "c3")  # the change back to rev 86 is written


def test_our_last_writes_echo_ends_the_watch_for_earlier_echoes():
    rev86, rev12 = {**WRITTEN, "name": "rev 86"}, {**WRITTEN, "name": "rev 12"}
    state = on_sent(on_sent(TargetState(), "c1", rev86, version(1)), "c2", rev12, version(2))
    assert classify(state, dict(rev86), TWO_WAY) == Echo(stale=True)
    state = on_observed(state, dict(rev12))
    assert "earlier" not in state
    # From now on the same values are a human edit again, as for any row.
    assert classify(state, dict(rev86), TWO_WAY) == Edit(("name",))


def test_a_fingerprint_handed_in_is_taken_only_when_it_covers_every_field_sent():
    """The gate hands in its command's fingerprint; what was sent before, and not now, still
    counts in the record's: that one is computed."""
    from streams.fingerprint import fingerprint

    first = on_sent(TargetState(), "c1", {"a": 1, "b": 2}, SOURCE, readable_fp=fingerprint({"a": 1, "b": 2}))
    assert first["sent_fp"] == fingerprint({"a": 1, "b": 2})
    again = on_sent(first, "c2", {"a": 3, "b": 2}, version(2), readable_fp=fingerprint({"a": 3, "b": 2}))
    assert again["sent_fp"] == fingerprint({"a": 3, "b": 2})
    partial = on_sent(again, "c3", {"a": 4}, version(3), readable_fp=fingerprint({"a": 4}))
    assert partial["sent"] == {"a": 4, "b": 2} and partial["sent_fp"] == fingerprint({"a": 4, "b": 2})
