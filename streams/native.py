"""The worker's hot path compiled with mypyc, used only when built from the very sources here.

    build()     compile `MODULES` into ``<root>/<digest>`` (`dualwrite compile`, make's `native`)
    search()    the places `streams/__init__.py` puts first on the package's path: the build of
                these sources, or none (then every module runs interpreted, as written)
    status()    one line: which of the two, and why

The modules are the worker's per-change path (ingest, route, transform, the gate's handlers and
applier, the plan of a change's next step, the batch engine and its stores): compiled, the same
code decides a change in about a quarter less time (`dualwrite bench`: P1 next to its
interpreted run, 1.2x to 1.4x). Nothing else changes: the sources
stay the truth, and a build is found by a digest of every source of `streams` and `topics`
(compiled code reads the types of the modules it imports), the Python ABI and the machine. A
source edited after the build, a Python upgraded, a tree copied elsewhere: the digest differs, the
build is not found, and the worker runs the sources until it is built again. Never stale code.

``DUALWRITE_NATIVE=0`` turns it off; ``DUALWRITE_NATIVE_DIR`` moves the builds (default:
``share/dualwrite-native`` under the Python environment, ``sys.prefix``).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

__all__ = ["MODULES", "NativeBuildError", "build", "built", "digest", "root", "search", "status"]

# `streams.<name>`: the per-change path. Not `streams.item` (mypyc's methods on a pydantic
# model are objects pydantic refuses as fields) nor the modules a change does not go through.
MODULES = ("dedupe", "echo", "effects", "engine", "factview", "gatekeeper", "handlers", "ingest", "pending",
           "published", "route", "store", "transform")
OFF_ENV = "DUALWRITE_NATIVE"
DIR_ENV = "DUALWRITE_NATIVE_DIR"
_DONE = "BUILT"  # written last: a build killed half way is not found
_MYPY_CONFIG = """[mypy]
python_version = 3.11
plugins = pydantic.mypy
ignore_missing_imports = True
"""


class NativeBuildError(RuntimeError):
    """The build failed: the message says why and what to do (the worker runs interpreted)."""


def _packages() -> list[Path]:
    """The `streams` and `topics` source folders."""
    topics = importlib.util.find_spec("topics")
    assert topics is not None and topics.submodule_search_locations is not None
    return [Path(__file__).resolve().parent, Path(next(iter(topics.submodule_search_locations))).resolve()]


def digest() -> str:
    """What a build is made from: every source of `streams` and `topics`, the ABI, the machine."""
    h = hashlib.sha256(f"{sys.implementation.cache_tag} {platform.machine()}\0".encode())
    for package in _packages():
        for path in sorted(package.rglob("*.py")):
            h.update(path.relative_to(package.parent).as_posix().encode() + b"\0")
            h.update(path.read_bytes() + b"\0")
    return h.hexdigest()[:20]


def root() -> Path:
    return Path(os.environ.get(DIR_ENV) or Path(sys.prefix) / "share" / "dualwrite-native")


def built() -> Path | None:
    """The build of these sources, if there is one."""
    place = root() / digest()
    return place if (place / _DONE).is_file() else None


def _off() -> bool:
    return os.environ.get(OFF_ENV, "1").strip().lower() in ("0", "false", "no", "off")


def search() -> list[str]:
    """The folders to put first on `streams`'s package path: the build's, or none. The build's
    top folder joins ``sys.path`` for the library its modules share."""
    if _off():
        return []
    place = built()
    if place is None:
        return []
    if str(place) not in sys.path:
        sys.path.append(str(place))
    return [str(place / "streams")]


def status() -> str:
    """One line: compiled or interpreted, and why."""
    if _off():
        return f"interpreted ({OFF_ENV}=0)"
    place = built()
    if place is None:
        return "interpreted (not compiled for these sources: run `dualwrite compile`)"
    handlers = sys.modules.get("streams.handlers")
    if handlers is not None and not str(handlers.__file__).startswith(str(place)):
        return f"interpreted (compiled at {place} after this process loaded its modules)"
    return f"compiled with mypyc ({place})"


def build() -> Path:
    """Compile `MODULES` of these sources (a minute on two cores); at once when already built.
    Raises `NativeBuildError`. Older builds in `root` are removed."""
    place = built()
    if place is not None:
        return place
    if importlib.util.find_spec("mypyc") is None:
        raise NativeBuildError("mypyc is not installed: pip install mypy (it carries mypyc), "
                               "then run `dualwrite compile` again")
    place = root() / digest()
    root().mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="build-", dir=root()) as tmp:
        work = Path(tmp)
        for package in _packages():
            shutil.copytree(package, work / package.name, ignore=shutil.ignore_patterns("__pycache__", "*.so"))
        (work / "mypy.ini").write_text(_MYPY_CONFIG)
        cmd = [sys.executable, "-m", "mypyc", *(f"streams/{name}.py" for name in MODULES)]
        done = subprocess.run(cmd, cwd=work, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            tail = " | ".join(done.stdout.strip().splitlines()[-3:] + done.stderr.strip().splitlines()[-3:])
            raise NativeBuildError(f"mypyc failed (exit {done.returncode}); the worker runs interpreted. "
                                   f"A C compiler and Python's headers are needed. {tail}".strip())
        staged = work / "out"
        (staged / "streams").mkdir(parents=True)
        for lib in work.glob("*.so"):  # the library the compiled modules share
            shutil.move(lib, staged / lib.name)
        for lib in (work / "streams").glob("*.so"):
            shutil.move(lib, staged / "streams" / lib.name)
        (staged / _DONE).write_text(" ".join(MODULES) + "\n")
        shutil.rmtree(place, ignore_errors=True)
        staged.rename(place)
    for old in root().iterdir():
        if old.is_dir() and old != place and not old.name.startswith("build-"):
            shutil.rmtree(old, ignore_errors=True)
    return place
