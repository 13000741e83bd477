"""The Java properties file of Kafka client settings (`dualwrite topics client-properties`):
escaped as `java.util.Properties.load` reads it, and readable by its owner only. The
integration tier reads one with Kafka's console consumer and Flink through SASL_SSL."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from pydantic import SecretStr

from dualwrite.kafka.properties import escape, render, write_properties

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(("text", "written"), [
    ("plain.value-1_2", "plain.value-1_2"),
    ('a "quoted" = b: c # d ! e', 'a "quoted" = b: c # d ! e'),  # only special where a line begins
    ("back\\slash", "back\\\\slash"),
    ("two\nlines\r\t", "two\\nlines\\r\\t"),
    (" leading", "\\ leading"), ("#comment", "\\#comment"), ("!comment", "\\!comment"),
    ("Łódź", "\\u0141\\u00f3d\\u017a"),
    ("😀", "\\ud83d\\ude00"),  # beyond the BMP: a surrogate pair, as Java's strings hold it
    ("\x01", "\\u0001"),
])
def test_values_are_escaped_for_java(text: str, written: str) -> None:
    assert escape(text) == written


def test_keys_escape_their_separators() -> None:
    assert escape("a=b:c d", key=True) == "a\\=b\\:c\\ d"


def test_the_file_is_ascii_owner_only_and_replaces_a_wider_one(tmp_path: Path) -> None:
    path = tmp_path / "client.properties"
    path.write_text("old")
    path.chmod(0o644)
    write_properties(path, {"security.protocol": "SASL_SSL", "sasl.jaas.config": SecretStr("x password=\"Ł\";")})
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    lines = path.read_bytes().decode("ascii").splitlines()
    assert lines[1:] == ["security.protocol=SASL_SSL", 'sasl.jaas.config=x password="\\u0141";']


def test_a_symlink_at_the_path_is_replaced_not_followed(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("keep me")
    victim.chmod(0o644)
    link = tmp_path / "client.properties"
    link.symlink_to(victim)
    write_properties(link, {"security.protocol": "SSL"})
    assert victim.read_text() == "keep me" and stat.S_IMODE(victim.stat().st_mode) == 0o644
    assert not link.is_symlink() and "security.protocol=SSL" in link.read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["client.properties", "victim"]  # no temp file left


def test_rendering_writes_the_secret_itself_after_a_comment_line() -> None:
    assert render({"sasl.jaas.config": SecretStr("secret-1")}).splitlines()[1:] == ["sasl.jaas.config=secret-1"]
