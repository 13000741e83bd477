"""One parser for request targets: plain requests and $batch parts read a key alike."""

from __future__ import annotations

import pytest

from emulators.common.target import BadTarget, encode_segment, parse_target

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("target", [
    "CustomersV3(CustomerAccount='%C5%81%C3%B3d%C5%BA%2F1')?cross-company=true",
    "/data/CustomersV3(CustomerAccount='%C5%81%C3%B3d%C5%BA%2F1')?cross-company=true",
    "https://fo.example/data/CustomersV3(CustomerAccount='%C5%81%C3%B3d%C5%BA%2F1')?cross-company=true",
])
def test_relative_rooted_and_absolute_forms_decode_alike(target: str) -> None:
    parsed = parse_target(target, "/data")
    assert parsed.segments == ("CustomersV3(CustomerAccount='Łódź/1')",)
    assert parsed.query == {"cross-company": "true"}


def test_a_key_is_decoded_exactly_once() -> None:
    assert parse_target("X('US%252D001')", "/data").segments == ("X('US%2D001')",)


@pytest.mark.parametrize("target", ["X('A/B')", "X('A\\B')"])
def test_raw_slashes_and_backslashes_separate_segments(target: str) -> None:
    assert parse_target(target, "/data").segments == ("X('A", "B')")


@pytest.mark.parametrize("target", [
    "X('A#B')", "X('50%off')", "X('%C5')", "X('%0D%0AHost: x')", "X('a b')", "X('Ł')",
    "X('\r\n')", "http://[::1/data/X",
])
def test_invalid_targets_are_refused(target: str) -> None:
    with pytest.raises(BadTarget):
        parse_target(target, "/data")


@pytest.mark.parametrize("text", ["Set(K='Łódź/1')", "Set(K='50%#?\\€')", "Set(K='O''Brien')"])
def test_encode_segment_is_ascii_and_reads_back(text: str) -> None:
    encoded = encode_segment(text)
    assert encoded.isascii() and "/" not in encoded and "\\" not in encoded
    assert parse_target(encoded, "/data").segments == (text,)
