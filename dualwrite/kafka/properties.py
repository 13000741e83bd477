"""A Java ``.properties`` file of Kafka client settings, for the tools that read the topics.

Kafka's console consumer (``--consumer.config``), Flink's Kafka connector (every setting as a
``properties.<name>`` table option), ksqlDB and Kafka Connect take their client settings from
such a file. `dualwrite topics client-properties` writes it from the deployment's
`dualwrite.settings.KafkaSettings` (`KafkaSettings.java_client`), so an analytics job reaches a
TLS/SASL cluster with the settings every dualwrite process uses.

The file holds the SASL password (in the JAAS line) and a client key when there is one, so it is
created readable by its owner only (0600) and its text is never printed. Java reads a properties
file as ISO-8859-1 with ``\\uXXXX`` escapes (`java.util.Properties.load`), so every character
outside printable ASCII is written escaped, and so are the characters the format gives a meaning
to: ``\\`` and line breaks anywhere, ``=``, ``:`` and spaces in a key, a leading space, ``#`` or
``!``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from pydantic import SecretStr

__all__ = ["escape", "render", "write_properties"]


def escape(text: str, *, key: bool = False) -> str:
    """``text`` as a key or value of a Java properties file (`java.util.Properties.load`)."""
    out: list[str] = []
    for n, ch in enumerate(text):
        if ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\f":
            out.append("\\f")
        elif (key and ch in "=: #!") or (ch in " #!" and n == 0):
            out.append("\\" + ch)
        elif " " <= ch <= "~":
            out.append(ch)
        else:  # control characters and everything beyond ASCII, as UTF-16 code units
            out.extend(f"\\u{unit:04x}" for unit in _utf16_units(ch))
    return "".join(out)


def _utf16_units(ch: str) -> list[int]:
    data = ch.encode("utf-16-be")
    return [int.from_bytes(data[i:i + 2], "big") for i in range(0, len(data), 2)]


def render(props: Mapping[str, str | SecretStr]) -> str:
    """The file's text, secrets revealed: write it, never print it."""
    lines = ["# Kafka client settings written by `dualwrite topics client-properties` (secret: 0600)"]
    for name, value in props.items():
        text = value.get_secret_value() if isinstance(value, SecretStr) else value
        lines.append(f"{escape(name, key=True)}={escape(text)}")
    return "\n".join(lines) + "\n"


def write_properties(path: Path, props: Mapping[str, str | SecretStr]) -> None:
    """Write ``props`` to ``path``, readable by its owner only. The text goes to a new file
    beside it (created 0600, never opened before) that then replaces ``path``: an existing file
    is replaced, never written through, so a symlink planted at ``path`` is replaced too, not
    followed to the file it names."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as f:
            f.write(render(props))
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
