"""Key segments and resource paths of Finance OData URLs."""

from __future__ import annotations

import pytest

from emulators.finance.entities import entity_named
from emulators.finance.keys import BadKey, format_key, parse_key, parse_path

pytestmark = pytest.mark.unit

PROJECTS = entity_named("ProjectsV2")


def test_parse_path_splits_collection_key_and_action() -> None:
    path = parse_path(("IntegrationJournals(dataAreaId='usmf',JournalId='PJ-1')",
                       "Microsoft.Dynamics.DataEntities.Post"))
    assert (path.collection, path.key_text, path.action) == (
        "IntegrationJournals", "dataAreaId='usmf',JournalId='PJ-1'", "Post")


def test_parse_path_keeps_parentheses_and_decoded_slashes_inside_quoted_values() -> None:
    path = parse_path(("ProjectsV2(dataAreaId='usmf',ProjectId='A)/B')",))
    assert path.key_text == "dataAreaId='usmf',ProjectId='A)/B'" and path.action is None


def test_a_key_split_by_a_raw_slash_is_unterminated() -> None:
    with pytest.raises(BadKey, match="Unterminated"):
        parse_path(("ProjectsV2(dataAreaId='usmf',ProjectId='A", "B')"))


def test_parse_key_reads_named_values_in_any_order_and_case() -> None:
    assert parse_key(PROJECTS, "projectid='P-1', dataAreaId='usmf'") == {
        "ProjectId": "P-1", "dataAreaId": "usmf"}


def test_parse_key_unescapes_doubled_quotes_and_reads_integers() -> None:
    lines = entity_named("IntegrationJournalLines")
    assert parse_key(lines, "dataAreaId='usmf',JournalId='O''Neil',LineNum=3") == {
        "dataAreaId": "usmf", "JournalId": "O'Neil", "LineNum": 3}


def test_parse_key_requires_every_key_field() -> None:
    with pytest.raises(BadKey, match="missing dataAreaId"):
        parse_key(PROJECTS, "ProjectId='P-1'")


def test_parse_key_rejects_fields_outside_the_key() -> None:
    with pytest.raises(BadKey, match="not a key field"):
        parse_key(PROJECTS, "dataAreaId='usmf',ProjectName='x'")


def test_single_field_keys_may_be_bare() -> None:
    assert parse_key(entity_named("LegalEntities"), "'demf'") == {"dataAreaId": "demf"}


def test_format_key_round_trips() -> None:
    row = {"dataAreaId": "usmf", "ProjectId": "O'Brien-1"}
    text = format_key(PROJECTS, row)
    assert text == "(dataAreaId='usmf',ProjectId='O''Brien-1')"
    assert parse_key(PROJECTS, text[1:-1]) == row
