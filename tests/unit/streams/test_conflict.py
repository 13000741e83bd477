import pytest

from streams.conflict import Loss, resolve

pytestmark = pytest.mark.unit

W = 5_000


def test_first_change_is_accepted_and_recorded_for_both_sides():
    d = resolve({}, "finance", 1_000, {"name": "A"}, "finance", W)
    assert d.keep == ("name",) and d.drop == () and d.losses == ()
    assert d.state["name"]["dataverse"] == "A"


def test_unchanged_field_is_not_pushed_again():
    state = resolve({}, "finance", 1_000, {"name": "A"}, "finance", W).state
    d = resolve(state, "finance", 9_000, {"name": "A"}, "finance", W)
    assert d.drop == ("name",) and d.keep == ()


def test_master_wins_a_same_window_conflict():
    state = resolve({}, "dataverse", 1_000, {"name": "B"}, "finance", W).state
    d = resolve(state, "finance", 2_000, {"name": "C"}, "finance", W)
    assert d.keep == ("name",)
    assert d.losses == (Loss("name", "dataverse", "B", "finance", "C"),)


def test_non_master_loses_a_same_window_conflict():
    state = resolve({}, "finance", 1_000, {"name": "C"}, "finance", W).state
    d = resolve(state, "dataverse", 2_000, {"name": "B"}, "finance", W)
    assert d.drop == ("name",) and d.keep == ()
    assert d.losses == (Loss("name", "dataverse", "B", "finance", "C"),)
    assert d.state["name"]["value"] == "C"


def test_changes_outside_the_window_do_not_conflict():
    state = resolve({}, "finance", 1_000, {"name": "C"}, "finance", W).state
    d = resolve(state, "dataverse", 1_000 + W + 1, {"name": "B"}, "finance", W)
    assert d.keep == ("name",) and d.losses == ()


def test_a_replayed_change_reaches_the_decision_the_original_reached():
    # Regression: after a crash the same change (same version) is redelivered; its field equals
    # what the state now holds for that side, yet it must still be written, as it was first.
    first = resolve({}, "dataverse", 1_000, {"name": "A"}, "dataverse", W, version=7)
    replay = resolve(first.state, "dataverse", 1_000, {"name": "A"}, "dataverse", W, version=7)
    assert first.keep == replay.keep == ("name",)
    later_same_value = resolve(first.state, "dataverse", 2_000, {"name": "A"}, "dataverse", W,
                               version=8)
    assert later_same_value.drop == ("name",)


def test_a_replayed_losing_change_still_loses():
    state = resolve({}, "finance", 1_000, {"name": "C"}, "finance", W, version=3).state
    lost = resolve(state, "dataverse", 2_000, {"name": "B"}, "finance", W, version=9)
    replay = resolve(lost.state, "dataverse", 2_000, {"name": "B"}, "finance", W, version=9)
    assert lost.drop == replay.drop == ("name",)
