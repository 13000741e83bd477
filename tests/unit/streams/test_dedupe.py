import pytest

from streams.dedupe import Seen, is_duplicate, seen_from, seen_key

pytestmark = pytest.mark.unit


def test_first_version_is_new():
    assert not is_duplicate(None, 1, 0)


def test_equal_version_from_another_record_is_duplicate():
    assert is_duplicate(Seen(version=5, offset=10), 5, 11)


def test_lower_version_is_duplicate():
    assert is_duplicate(Seen(version=5, offset=10), 4, 12)


def test_higher_version_is_new():
    assert not is_duplicate(Seen(version=5, offset=10), 6, 11)


def test_replay_of_the_record_that_set_the_version_is_processed_again():
    # The table changelog may be ahead of the committed offset after a crash.
    assert not is_duplicate(Seen(version=5, offset=10), 5, 10)


def test_seen_round_trips_through_json_values():
    assert seen_from({"version": "7", "offset": 3}) == Seen(version=7, offset=3)
    assert seen_from(None) is None
    assert seen_key("dataverse", "msdyn_projects", "x") == "dataverse:msdyn_projects:x"


def test_a_retried_record_of_the_seen_version_is_processed_again():
    # Dead-lettered after dedupe (a map transform failed), re-driven at a new offset.
    assert not is_duplicate(Seen(version=5, offset=10), 5, 20, retried=True)


def test_a_retried_record_older_than_the_seen_version_stays_a_duplicate():
    # A newer change of the row was processed since: replaying the old one would undo it.
    assert is_duplicate(Seen(version=5, offset=10), 4, 20, retried=True)


def test_a_retried_record_of_a_new_version_is_new_and_without_the_header_a_copy_is_dropped():
    assert not is_duplicate(Seen(version=5, offset=10), 6, 20, retried=True)
    assert not is_duplicate(None, 5, 20, retried=True)
    assert is_duplicate(Seen(version=5, offset=10), 5, 20, retried=False)
