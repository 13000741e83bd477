"""`dualwrite compile` for real: mypyc builds the hot path from these sources, a worker's Python
loads it, and it decides a workload exactly as the sources interpreted do."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from streams import native

pytestmark = pytest.mark.integration

_PROBE = """
import json, streams.engine, streams.handlers
from streams import native
from bench.decisions import decisions_rate
d = decisions_rate(300, 3)
print(json.dumps({"status": native.status(), "handlers": streams.handlers.__file__,
                  "engine": streams.engine.__file__, "decided": [d.changes, d.gate_records, d.commands]}))
"""


def _probe(env: dict[str, str]) -> dict[str, object]:
    done = subprocess.run([sys.executable, "-c", _PROBE], env={**os.environ, **env}, capture_output=True,
                          text=True, check=True, timeout=120)
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_compiled_hot_path_decides_as_the_sources_do(tmp_path: Path) -> None:
    builds = tmp_path / "builds"
    done = subprocess.run([sys.executable, "-m", "dualwrite", "compile"], capture_output=True, text=True,
                          timeout=600, env={**os.environ, native.DIR_ENV: str(builds)})
    assert done.returncode == 0, done.stderr
    place = Path(done.stdout.strip().splitlines()[-1].removeprefix("compiled: "))
    assert place.parent == builds and (place / "BUILT").is_file()
    compiled = _probe({native.DIR_ENV: str(builds), native.OFF_ENV: "1"})  # whatever the caller's is
    assert compiled["status"] == f"compiled with mypyc ({place})"
    assert str(compiled["handlers"]).startswith(str(place)) and str(compiled["handlers"]).endswith(".so")
    assert str(compiled["engine"]).startswith(str(place))
    interpreted = _probe({native.DIR_ENV: str(builds), native.OFF_ENV: "0"})
    assert interpreted["status"] == "interpreted (DUALWRITE_NATIVE=0)"
    assert str(interpreted["handlers"]).endswith("streams/handlers.py")
    # 300 projects of 3 versions and their legal entity: the same gate records, a command each.
    assert compiled["decided"] == interpreted["decided"] == [901, 1503, 900]
    # Built already: at once, the same place.
    again = subprocess.run([sys.executable, "-m", "dualwrite", "compile"], capture_output=True, text=True,
                           timeout=120, env={**os.environ, native.DIR_ENV: str(builds)})
    assert again.stdout.strip() == f"compiled: {place}"
