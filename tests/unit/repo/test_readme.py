"""The README tells the truth: its settings table is the model's, and it names the two commands."""

from __future__ import annotations

from pathlib import Path

import pytest

from dualwrite.settings_doc import settings_table

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[3]


def test_settings_table_is_current() -> None:
    assert settings_table() in (ROOT / "README.md").read_text(), (
        "README settings table is stale: run `dualwrite settings --readme README.md`")


def test_two_commands_and_ci_runs_the_readme_test_command() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "make demo" in readme and "make test" in readme
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in ci.splitlines()[-1]
