"""Both emulators count API calls at /_admin/requests (what replay and bench tests measure)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.emulators import start_emulator

pytestmark = pytest.mark.contract


@pytest.mark.parametrize(("kind", "collection", "body"), [
    ("dataverse", "uoms", {"name": "Crate", "quantity": 1.0}),
    ("finance", "Units", {"UnitSymbol": "crt", "Description": "Crate"}),
])
def test_requests_are_counted_by_method_and_target(tmp_path: Path, kind: str, collection: str,
                                                   body: dict[str, object]) -> None:
    emu = start_emulator(kind, tmp_path)
    try:
        with emu.client() as api, emu.admin() as admin:
            assert admin.delete("/requests").json()["total"] == 0
            assert api.get(collection).status_code == 200
            assert api.post(collection, json=body).status_code in (201, 204)
            stats = admin.get("/requests").json()
            assert stats["total"] == 2 and stats["writes"] == 1
            assert stats["by_target"] == {f"GET {collection}": 1, f"POST {collection}": 1}
            assert admin.delete("/requests").json() == {"total": 0, "writes": 0, "by_method": {},
                                                        "by_target": {}}
    finally:
        emu.stop()
