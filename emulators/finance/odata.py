"""FO dialect on top of the common OData query translation.

Finance adds two things to standard ``$filter`` that the common translator does not know:
- ``*`` wildcards inside ``eq``/``ne`` string literals (``Name eq 'Contoso*'``), which FO
  documents as its way of doing prefix/contains matches;
- enum literals written as ``Microsoft.Dynamics.DataEntities.ProjectStage'Finished'``; FO
  stores enums by symbol and we do the same, so the literal becomes the string ``'Finished'``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from odata_query import ast
from odata_query.exceptions import ODataException
from odata_query.grammar import ODataLexer, ODataParser

from emulators.common import query as common_query
from emulators.common.query import Query, bad_query, parse_query
from emulators.finance.schema import Entity

__all__ = ["parse_fo_query", "rewrite_enum_literals"]

_QUALIFIED_TAIL = re.compile(r"(?:[A-Za-z_]\w*\.)+[A-Za-z_]\w*$")


def rewrite_enum_literals(text: str) -> str:
    """``Namespace.Enum'Symbol'`` -> ``'Symbol'``; quoted strings are copied untouched."""
    out = ""
    i = 0
    while i < len(text):
        if text[i] != "'":
            out += text[i]
            i += 1
            continue
        j = i + 1
        while j < len(text):
            if text[j] == "'":
                if text[j + 1:j + 2] == "'":
                    j += 2
                    continue
                break
            j += 1
        prefix = _QUALIFIED_TAIL.search(out)
        if prefix is not None:
            out = out[:prefix.start()]
        out += text[i:j + 1]
        i = j + 1
    return out


class _FoVisitor(common_query._SqlVisitor):
    """The common visitor plus FO's ``*`` wildcard in ``eq``/``ne`` comparisons."""

    def visit_Compare(self, node: ast.Compare) -> str:
        if (isinstance(node.comparator, ast.Eq | ast.NotEq) and isinstance(node.right, ast.String)
                and "*" in node.right.val):
            escaped = (node.right.val.replace("\\", "\\\\").replace("%", "\\%")
                       .replace("_", "\\_").replace("*", "%"))
            negate = "NOT " if isinstance(node.comparator, ast.NotEq) else ""
            return f"({self.visit(node.left)} {negate}LIKE {self._param(escaped)} ESCAPE '\\')"
        result: str = super().visit_Compare(node)
        return result


def _parse_filter(text: str, columns: Mapping[str, str]) -> tuple[str, list[object]]:
    try:
        tree = ODataParser().parse(ODataLexer().tokenize(text))
    except ODataException as exc:
        raise bad_query(f"Syntax error in $filter '{text}': {exc}") from exc
    except Exception as exc:  # the parser raises plain errors on some malformed input
        raise bad_query(f"Syntax error in $filter '{text}'.") from exc
    if tree is None:
        raise bad_query(f"Syntax error in $filter '{text}'.")
    visitor = _FoVisitor(columns)
    return visitor.visit(tree), visitor.params


# Options FO supports that the emulator does not; refused rather than silently ignored.
_UNSUPPORTED = ("$expand", "$apply", "$search", "$compute")
_KNOWN = ("$filter", "$select", "$orderby", "$top", "$skip", "$count", "$format", "$skiptoken")


def parse_fo_query(options: Mapping[str, str], ent: Entity) -> Query:
    """Translate the system query options of a collection GET on ``ent``."""
    for name in options:
        if name in _UNSUPPORTED:
            raise bad_query(f"The query option '{name}' is not supported by the Finance "
                            "emulator.")
        if name.startswith("$") and name not in _KNOWN:
            raise bad_query(f"The query parameter '{name}' is not supported.")
    columns = {name: name for name in ent.all_names}
    rest = {k: v for k, v in options.items() if k != "$filter"}
    query = parse_query(rest, columns)
    if options.get("$filter"):
        query.where, query.params = _parse_filter(rewrite_enum_literals(options["$filter"]),
                                                  columns)
    return query
