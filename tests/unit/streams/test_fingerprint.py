import pytest

from streams.fingerprint import canonical_json, fingerprint

pytestmark = pytest.mark.unit


def test_stable_and_prefixed():
    fp = fingerprint({"Name": "Adatum", "Group": "30"})
    assert fp == fingerprint({"Name": "Adatum", "Group": "30"})
    assert fp.startswith("sha256:") and len(fp) == 7 + 64


def test_key_order_does_not_matter():
    assert fingerprint({"a": 1, "b": {"y": 2, "x": 1}}) == fingerprint({"b": {"x": 1, "y": 2}, "a": 1})


def test_values_matter():
    assert fingerprint({"a": 1}) != fingerprint({"a": "1"})
    assert fingerprint({"a": None}) != fingerprint({})


def test_canonical_json_is_compact_and_sorted():
    assert canonical_json({"b": 1, "a": [1, 2]}) == b'{"a":[1,2],"b":1}'
