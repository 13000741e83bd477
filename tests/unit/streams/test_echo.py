import pytest

from streams.echo import (
    Echo,
    Edit,
    NoSync,
    TargetState,
    classify,
    is_noop,
    on_ack,
    on_observed,
    on_sent,
)

pytestmark = pytest.mark.unit

WRITTEN = {"accountnumber": "US-001", "name": "Adatum", "msdyn_customergroupid": "30"}
TWO_WAY = ("name",)


def test_our_write_coming_back_is_an_echo():
    state = on_sent(TargetState(), "customers:1:1", WRITTEN)
    assert classify(state, dict(WRITTEN), TWO_WAY) == Echo()


def test_acknowledged_fingerprint_is_an_echo_too():
    from streams.fingerprint import fingerprint

    state = on_ack(TargetState(), "x", fingerprint(WRITTEN), delete=False)
    assert classify(state, dict(WRITTEN), TWO_WAY) == Echo()


def test_human_edit_of_a_two_way_field_flows_back():
    state = on_sent(TargetState(), "c1", WRITTEN)
    assert classify(state, {**WRITTEN, "name": "Adatum Corp"}, TWO_WAY) == Edit(("name",))


def test_edit_of_a_one_way_field_does_not_sync():
    state = on_sent(TargetState(), "c1", WRITTEN)
    verdict = classify(state, {**WRITTEN, "msdyn_customergroupid": "99"}, TWO_WAY)
    assert isinstance(verdict, NoSync)


def test_first_sight_of_a_row_never_flows_back():
    assert isinstance(classify(TargetState(), dict(WRITTEN), TWO_WAY), NoSync)


def test_noop_when_target_already_holds_the_values():
    state = on_observed(TargetState(), dict(WRITTEN))
    assert is_noop(state, {"name": "Adatum"})
    assert not is_noop(state, {"name": "Other"})
    assert not is_noop(TargetState(), {"name": "Adatum"})


def test_ack_of_the_last_command_updates_what_the_target_holds():
    state = on_sent(TargetState(), "c1", WRITTEN)
    state = on_ack(state, "c1", "sha256:x", delete=False)
    assert state["current"] == WRITTEN
    assert on_ack(state, "c1", "sha256:x", delete=True) == TargetState()
