"""`streams.native`: a build is found only for the very sources it was made from, and the
compiled modules avoid what mypyc compiles unlike Python."""

from __future__ import annotations

import ast
import sys
import types
from pathlib import Path

import pytest

from streams import native

pytestmark = pytest.mark.unit

SOURCES = Path(native.__file__).resolve().parent


@pytest.fixture
def tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Sources of two packages under ``tmp_path``, read by the digest; builds under ``tmp_path``."""
    for package in ("streams", "topics"):
        (tmp_path / "src" / package / "sub").mkdir(parents=True)
        (tmp_path / "src" / package / "__init__.py").write_text("")
        (tmp_path / "src" / package / "sub" / "rules.py").write_text(f"RULE = '{package}'\n")
    monkeypatch.setattr(native, "_packages", lambda: [tmp_path / "src" / "streams", tmp_path / "src" / "topics"])
    monkeypatch.setenv(native.DIR_ENV, str(tmp_path / "builds"))
    monkeypatch.delenv(native.OFF_ENV, raising=False)
    monkeypatch.delitem(sys.modules, "streams.handlers", raising=False)  # as in a fresh process
    return tmp_path


def _made(tree: Path) -> Path:
    """A build of the sources as they are now (its files as a build leaves them)."""
    place = tree / "builds" / native.digest()
    (place / "streams").mkdir(parents=True)
    (place / "BUILT").write_text("")
    return place


def test_a_build_of_these_sources_goes_first_on_the_package_path(tree: Path, monkeypatch) -> None:
    monkeypatch.setattr(sys, "path", list(sys.path))
    place = _made(tree)
    assert native.built() == place
    assert native.search() == [str(place / "streams")]
    assert str(place) in sys.path  # the library the compiled modules share
    assert native.status() == f"compiled with mypyc ({place})"


def test_a_process_that_loaded_the_sources_before_the_build_says_so(tree: Path, monkeypatch) -> None:
    place = _made(tree)
    monkeypatch.setitem(sys.modules, "streams.handlers", types.SimpleNamespace(__file__=str(SOURCES / "handlers.py")))
    assert native.status() == f"interpreted (compiled at {place} after this process loaded its modules)"


@pytest.mark.parametrize("edit", ["change", "add", "remove", "other package"])
def test_a_source_edited_after_the_build_finds_no_build(tree: Path, edit: str) -> None:
    _made(tree)
    rules = tree / "src" / "streams" / "sub" / "rules.py"
    if edit == "change":
        rules.write_text("RULE = 'edited'\n")
    elif edit == "add":
        (tree / "src" / "streams" / "more.py").write_text("")
    elif edit == "remove":
        rules.unlink()
    else:
        (tree / "src" / "topics" / "sub" / "rules.py").write_text("RULE = 'edited'\n")
    assert native.built() is None
    assert native.search() == []
    assert native.status().startswith("interpreted (not compiled for these sources")


def test_a_build_killed_before_its_end_is_not_found(tree: Path) -> None:
    (_made(tree) / "BUILT").unlink()
    assert native.built() is None and native.search() == []


@pytest.mark.parametrize("value", ["0", "false", "off"])
def test_it_can_be_turned_off(tree: Path, monkeypatch, value: str) -> None:
    _made(tree)
    monkeypatch.setenv(native.OFF_ENV, value)
    assert native.search() == []
    assert native.status() == "interpreted (DUALWRITE_NATIVE=0)"


def test_without_mypyc_the_build_says_what_to_do(tree: Path, monkeypatch) -> None:
    monkeypatch.setattr(native.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(native.NativeBuildError, match="pip install mypy"):
        native.build()


def _rebound_exception_names(source: str) -> list[str]:
    """mypyc types a name by its first binding: ``except KeyError as exc`` and then
    ``except Exception as exc`` in one function makes the second a TypeError when it catches
    anything but a KeyError (an error guard that raises instead of dead-lettering)."""
    found = []
    for fn in ast.walk(ast.parse(source)):
        if isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
            first: dict[str, str] = {}
            for node in ast.walk(fn):
                if isinstance(node, ast.ExceptHandler) and node.name:
                    caught = ast.unparse(node.type) if node.type else "BaseException"
                    if first.setdefault(node.name, caught) != caught:
                        found.append(f"{fn.name}: {node.name} is {first[node.name]}, then {caught}")
    return found


def test_the_rule_finds_an_exception_name_bound_to_two_types() -> None:
    source = ("def f():\n    try:\n        g()\n    except KeyError as exc:\n        pass\n"
              "    try:\n        g()\n    except Exception as exc:\n        pass\n")
    assert _rebound_exception_names(source) == ["f: exc is KeyError, then Exception"]


@pytest.mark.parametrize("module", native.MODULES)
def test_no_compiled_module_binds_an_exception_name_to_two_types(module: str) -> None:
    assert _rebound_exception_names((SOURCES / f"{module}.py").read_text()) == []


def test_every_compiled_module_exists() -> None:
    assert all((SOURCES / f"{m}.py").is_file() for m in native.MODULES)
