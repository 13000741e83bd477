"""The README tells the truth: its settings table is the model's, and it names the two commands."""

from __future__ import annotations

from pathlib import Path

import pytest

from dualwrite.maps_doc import maps_table
from dualwrite.settings_doc import settings_table

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[3]


def test_settings_table_is_current() -> None:
    assert settings_table() in (ROOT / "README.md").read_text(), (
        "README settings table is stale: run `dualwrite settings --readme README.md`")


def test_map_table_is_every_map_of_the_registry() -> None:
    assert maps_table() in (ROOT / "README.md").read_text(), (
        "README map table is stale: run `python -m dualwrite.maps_doc README.md`")


def test_two_commands_and_ci_runs_the_readme_test_command() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "make demo" in readme and "make test" in readme
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in ci.splitlines()[-1]


def test_command_table_names_every_command_of_the_cli() -> None:
    import typer.main

    from dualwrite.cli import app

    readme = (ROOT / "README.md").read_text()
    table = readme.split("## The `dualwrite` command", 1)[1].split("\n## ", 1)[0]
    group = typer.main.get_group(app)
    missing = [name for name, command in group.commands.items()
               if not command.hidden and f"`dualwrite {name}" not in table]
    assert not missing, f"README's command table lacks: {missing}"


def test_every_cli_command_is_in_the_readme_command_table() -> None:
    from dualwrite.cli import app

    names = [g.name for g in app.registered_groups]
    names += [c.name or (c.callback.__name__ if c.callback else "") for c in app.registered_commands]
    table = [line for line in (ROOT / "README.md").read_text().splitlines()
             if line.startswith("| `dualwrite ")]
    missing = [n for n in names if not any(line.startswith(f"| `dualwrite {n}") for line in table)]
    assert names and not missing, f"README command table lacks: {missing}"
