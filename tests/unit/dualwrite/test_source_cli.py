"""`dualwrite source`: a state file it cannot use is one line and exit 1, naming what to do."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from dualwrite.cli import app

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("system", ["dataverse", "finance"])
def test_an_unusable_image_store_is_one_line_and_exit_1(system: str, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    junk = tmp_path / "sources" / f"{system}-images.lmdb"
    junk.parent.mkdir()
    junk.write_bytes(b"not a database" * 200)
    monkeypatch.setenv("DUALWRITE_STATE_DIR", str(tmp_path))
    result = CliRunner().invoke(app, ["source", system])
    assert result.exit_code == 1, result.output
    assert "not a usable store of before images" in result.output and "move it away" in result.output
    assert "Traceback" not in result.output
