"""OData system query options translated to SQLite with bound parameters.

``$filter`` is parsed by the ``odata-query`` package's grammar and translated by our own
visitor, so every literal becomes a ``?`` parameter and every identifier must be one of the
entity's known properties: nothing from the URL is ever spliced into SQL text.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from odata_query import ast
from odata_query.exceptions import ODataException
from odata_query.grammar import ODataLexer, ODataParser

from emulators.common.errors import ODataError

QUERY_ERROR_CODE = "0x80060888"
_COMPARATORS = {ast.Eq: "=", ast.NotEq: "!=", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">="}
_ARITHMETIC = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.Mod: "%"}
_LIKE = {"contains": ("%", "%"), "startswith": ("", "%"), "endswith": ("%", "")}
_ORDER_ITEM = re.compile(r"^\s*(\S+?)(?:\s+(asc|desc))?\s*$", re.IGNORECASE)


def bad_query(message: str) -> ODataError:
    return ODataError(400, QUERY_ERROR_CODE, message)


@dataclass
class Query:
    """The parsed options: ``where``/``order_by`` are SQL fragments over quoted columns."""

    where: str = ""
    params: list[object] = field(default_factory=list)
    select: list[str] | None = None
    order_by: str = ""
    top: int | None = None
    skip: int = 0
    count: bool = False


class _SqlVisitor:
    """Turns a filter AST into SQL; ``columns`` maps OData property names to SQL columns."""

    def __init__(self, columns: Mapping[str, str]) -> None:
        self.columns = columns
        self.params: list[object] = []

    def visit(self, node: ast._Node) -> str:
        method = getattr(self, "visit_" + type(node).__name__, None)
        if method is None:
            raise bad_query(f"The query construct '{type(node).__name__}' is not supported.")
        result: str = method(node)
        return result

    def _param(self, value: object) -> str:
        self.params.append(value)
        return "?"

    def visit_Identifier(self, node: ast.Identifier) -> str:
        column = self.columns.get(node.name)
        if column is None or node.namespace:
            raise bad_query(f"Could not find a property named '{node.name}' on type "
                            "'Microsoft.Dynamics.CRM.entity'.")
        return f'"{column}"'

    def visit_Attribute(self, node: ast.Attribute) -> str:
        raise bad_query("Navigation properties are not supported in $filter here.")

    def visit_Null(self, node: ast.Null) -> str:
        return "NULL"

    def visit_Integer(self, node: ast.Integer) -> str:
        return self._param(int(node.val))

    def visit_Float(self, node: ast.Float) -> str:
        return self._param(float(node.val))

    def visit_Boolean(self, node: ast.Boolean) -> str:
        return self._param(1 if node.val.lower() == "true" else 0)

    def visit_String(self, node: ast.String) -> str:
        return self._param(node.val)

    def visit_GUID(self, node: ast.GUID) -> str:
        return self._param(node.val.lower())

    def visit_Date(self, node: ast.Date) -> str:
        return self._param(node.val)

    def visit_DateTime(self, node: ast.DateTime) -> str:
        return self._param(normalise_datetime(node.val))

    def visit_List(self, node: ast.List) -> str:
        return "(" + ", ".join(self.visit(item) for item in node.val) + ")"

    def visit_BinOp(self, node: ast.BinOp) -> str:
        return f"({self.visit(node.left)} {_ARITHMETIC[type(node.op)]} {self.visit(node.right)})"

    def visit_Compare(self, node: ast.Compare) -> str:
        left, right = self.visit(node.left), self.visit(node.right)
        if isinstance(node.comparator, ast.In):
            return f"{left} IN {right}"
        op = _COMPARATORS[type(node.comparator)]
        # OData null comparisons are two-valued; SQL's "= NULL" would never match.
        if "NULL" in (left, right) and op in ("=", "!="):
            other = right if left == "NULL" else left
            return f"{other} IS {'NOT ' if op == '!=' else ''}NULL"
        return f"{left} {op} {right}"

    def visit_BoolOp(self, node: ast.BoolOp) -> str:
        op = "AND" if isinstance(node.op, ast.And) else "OR"
        return f"({self.visit(node.left)} {op} {self.visit(node.right)})"

    def visit_UnaryOp(self, node: ast.UnaryOp) -> str:
        if isinstance(node.op, ast.Not):
            return f"(NOT {self.visit(node.operand)})"
        return f"(-{self.visit(node.operand)})"

    def visit_Call(self, node: ast.Call) -> str:
        name = node.func.name.lower()
        if name in _LIKE and len(node.args) == 2 and isinstance(node.args[1], ast.String):
            prefix, suffix = _LIKE[name]
            escaped = node.args[1].val.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            return f"({self.visit(node.args[0])} LIKE {self._param(prefix + escaped + suffix)} ESCAPE '\\')"
        if name in ("tolower", "toupper", "length", "trim") and len(node.args) == 1:
            sql = {"tolower": "LOWER", "toupper": "UPPER", "length": "LENGTH", "trim": "TRIM"}[name]
            return f"{sql}({self.visit(node.args[0])})"
        raise bad_query(f"The function '{node.func.name}' is not supported.")


def normalise_datetime(value: str) -> str:
    """DateTimeOffset literals in the stored form (UTC, whole seconds, ``Z``)."""
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise bad_query(f"Invalid DateTimeOffset literal '{value}'.") from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_filter(text: str, columns: Mapping[str, str]) -> tuple[str, list[object]]:
    """``$filter`` text -> (SQL boolean expression, parameters)."""
    try:
        tree = ODataParser().parse(ODataLexer().tokenize(text))
    except ODataException as exc:
        raise bad_query(f"Syntax error in $filter '{text}': {exc}") from exc
    except Exception as exc:  # the sly parser raises plain errors on some malformed input
        raise bad_query(f"Syntax error in $filter '{text}'.") from exc
    if tree is None:
        raise bad_query(f"Syntax error in $filter '{text}'.")
    visitor = _SqlVisitor(columns)
    return visitor.visit(tree), visitor.params


def _non_negative(name: str, raw: str) -> int:
    if not raw.strip().isdigit():
        raise bad_query(f"Invalid value '{raw}' for the query option {name}.")
    return int(raw)


def parse_query(options: Mapping[str, str], columns: Mapping[str, str]) -> Query:
    """Translate ``$filter``, ``$select``, ``$orderby``, ``$top``, ``$skip`` and ``$count``."""
    query = Query()
    if options.get("$filter"):
        query.where, query.params = parse_filter(options["$filter"], columns)
    if options.get("$select"):
        names = [name.strip() for name in options["$select"].split(",") if name.strip()]
        for name in names:
            if name not in columns:
                raise bad_query(f"Could not find a property named '{name}' on type "
                                "'Microsoft.Dynamics.CRM.entity'.")
        query.select = names
    if options.get("$orderby"):
        terms = []
        for item in options["$orderby"].split(","):
            match = _ORDER_ITEM.match(item)
            if match is None or match.group(1) not in columns:
                raise bad_query(f"Invalid $orderby item '{item.strip()}'.")
            direction = (match.group(2) or "asc").upper()
            terms.append(f'"{columns[match.group(1)]}" {direction}')
        query.order_by = ", ".join(terms)
    if "$top" in options:
        query.top = _non_negative("$top", options["$top"])
    if "$skip" in options:
        query.skip = _non_negative("$skip", options["$skip"])
    if "$count" in options:
        flag = options["$count"].lower()
        if flag not in ("true", "false"):
            raise bad_query(f"Invalid value '{options['$count']}' for the query option $count.")
        query.count = flag == "true"
    return query
