"""`answer_json` reads every answer exactly as the standard library does (values and types),
with orjson for the common body: a property over any JSON text, and the cases where the two
readers differ named one by one."""

from __future__ import annotations

import json
import math
from typing import Any

import httpx
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from connectors.common.http import answer_json

pytestmark = pytest.mark.unit


def strict(value: Any) -> Any:
    """A value with its types spelled out: 1 and 1.0 and True differ, NaN equals NaN."""
    if isinstance(value, dict):
        return ("dict", [(k, strict(v)) for k, v in value.items()])
    if isinstance(value, list):
        return ("list", [strict(v) for v in value])
    if isinstance(value, float):
        return ("float", "nan" if math.isnan(value) else repr(value))
    return (type(value).__name__, value)


def answer(body: bytes, content_type: str = "application/json") -> httpx.Response:
    return httpx.Response(200, content=body, headers={"content-type": content_type})


scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(),
                    st.text(st.characters(exclude_categories=())))  # surrogates included
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=6), inner, max_size=4)), max_leaves=20)


@given(values, st.booleans())
@example(2**64, False)
@example(-(2**63) - 1, False)  # 19 digits, beyond 64 bits: orjson would make it a float
@example(10**19, False)
@example({"v": "a \ud800 b", "n": 1}, True)
@example(float("nan"), False)
@example(float("-inf"), False)
def test_any_json_text_is_read_as_the_standard_library_reads_it(value: Any, ascii_only: bool) -> None:
    text = json.dumps(value, ensure_ascii=ascii_only)
    try:
        body = text.encode()
    except UnicodeEncodeError:  # a lone surrogate written raw: not UTF-8, sent escaped instead
        body = json.dumps(value).encode()
    assert strict(answer_json(answer(body))) == strict(json.loads(body))


@pytest.mark.parametrize("body", [
    b'{"amount": 123456789012345678901234}',
    b'{"amount": -9223372036854775809}',
    b'{"name": "A\\ud800"}',
    b'{"x": NaN, "y": Infinity}',
    b'\xef\xbb\xbf{"a": 1}',
    b'{"a": 1, "a": 2}',
    b'{"a": 1e400}',
])
def test_where_orjson_reads_otherwise_the_standard_library_reads_it(body: bytes) -> None:
    assert strict(answer_json(answer(body))) == strict(answer(body).json())


def test_another_charset_is_read_by_its_charset() -> None:
    body = '{"name": "Contoso é"}'.encode("utf-16")
    assert answer_json(answer(body, "application/json; charset=utf-16")) == {"name": "Contoso é"}


@pytest.mark.parametrize("body", [b'{"value": [1, 2', b"<html>Sign in</html>", b"", b"\xff\xfe\x00junk"])
def test_what_is_not_json_raises_a_value_error(body: bytes) -> None:
    with pytest.raises(ValueError):
        answer_json(answer(body))
