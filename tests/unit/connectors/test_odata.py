"""One encoding of key and ``$filter`` literals (issue 8, findings 1 and 2)."""

from __future__ import annotations

from urllib.parse import unquote

import pytest

from connectors.common.odata import InvalidKey, check_key_value, identifier, key_literal, literal
from connectors.dataverse.client import entity_key as dataverse_key
from connectors.finance.client import entity_key as finance_key

pytestmark = pytest.mark.unit

HOSTILE = ["US%2D001", "A#B", "A?x=1", "a/b", "a\\b", "O'Brien", "Łódź-1", "€", "x y", "a,b=c)(", "%"]


def test_literals_of_each_type() -> None:
    assert literal("O'Brien") == "'O''Brien'"
    assert literal(None) == "null" and literal(True) == "true" and literal(False) == "false"
    assert literal(42) == "42" and literal(1.5) == "1.5"


@pytest.mark.parametrize("value", HOSTILE)
def test_key_literal_is_ascii_unreserved_and_decodes_back_to_the_literal(value: str) -> None:
    encoded = key_literal(value)
    assert encoded.isascii()
    assert not set(encoded) & set("#?/\\ ,()=")  # nothing that could end the segment or the path
    assert unquote(encoded) == literal(value)


def test_a_literal_percent_sequence_is_not_a_different_key() -> None:
    assert key_literal("US%2D001") == "'US%252D001'"
    assert finance_key("CustomersV3", {"dataAreaId": "usmf", "CustomerAccount": "US%2D001"}) == \
        "CustomersV3(dataAreaId='usmf',CustomerAccount='US%252D001')"


def test_non_latin1_keys_are_utf8_percent_encoded() -> None:
    assert key_literal("Łódź-1") == "'%C5%81%C3%B3d%C5%BA-1'"
    assert key_literal("€") == "'%E2%82%AC'"


def test_dataverse_keeps_bare_guids_and_encodes_strings() -> None:
    guid = "00000000-0000-0000-0000-000000000001"
    assert dataverse_key("accounts", {"accountnumber": "A#1", "_msdyn_company_value": guid}) == \
        f"accounts(accountnumber='A%231',_msdyn_company_value={guid})"
    assert dataverse_key("accounts", {"accountid": guid}) == f"accounts({guid})"


@pytest.mark.parametrize("bad", ["a\rb", "a\nMSCRM.CallerID: x", "\x00", "a\x7f", "a\x85", "a\u2028", "a\u2029",
                                 "tab\there"])
def test_control_characters_are_refused_in_every_key(bad: str) -> None:
    with pytest.raises(InvalidKey) as info:
        check_key_value(bad, "ProjectId")
    assert info.value.error_class == "InvalidKey" and "ProjectId" in info.value.reason
    with pytest.raises(InvalidKey):
        finance_key("ProjectsV2", {"dataAreaId": "usmf", "ProjectId": bad})
    with pytest.raises(InvalidKey):
        dataverse_key("msdyn_projects", {"msdyn_projectnumber": bad})


@pytest.mark.parametrize("bad", [[0], {"a": 1}, float("inf"), float("nan"), b"bytes"])
def test_non_scalar_key_values_are_refused(bad: object) -> None:
    with pytest.raises(InvalidKey):
        key_literal(bad)


@pytest.mark.parametrize("name", ["ProjectsV2)/x", "a b", "", "x?y", "1abc", "a\r\nb"])
def test_names_must_be_identifiers(name: str) -> None:
    with pytest.raises(InvalidKey):
        identifier(name)
    with pytest.raises(InvalidKey):
        finance_key(name, {"dataAreaId": "usmf"})
    with pytest.raises(InvalidKey):
        finance_key("ProjectsV2", {name: "x"})
