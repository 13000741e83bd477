"""Transaction categories: FO-assigned ids and the shared categories created with them.

When dual-write creates a transaction category, FO assigns an identifier such as
``TCN-0000001000-D3B43`` (unless the writer supplies one) and creates one shared category per
FO transaction type in the same transaction: ``<CategoryId>-1`` Hour, ``-2`` Fee, ``-3`` Item,
``-4`` Expense. The fifth (On-account, ``-5``) needs an FO 10.0.41 feature and is not created.
Project categories are NOT created: accountants add them per legal entity (plain entity writes).
"""

from __future__ import annotations

import hashlib
import sqlite3

from emulators.finance.entities import entity
from emulators.finance.tables import next_number
from emulators.finance.writer import Row, Writer

__all__ = ["SHARED_TYPES", "category_id", "create_shared_categories", "shared_category_rows"]

SHARED_TYPES: tuple[tuple[int, str], ...] = ((1, "Hour"), (2, "Fee"), (3, "Item"), (4, "Expense"))
_FIRST_CATEGORY_NUMBER = 1000


def category_id(number: int, seed: str) -> str:
    """``TCN-<10 digits>-<5 hex>``; the hex tail is derived from the seed, so it is stable."""
    tail = hashlib.sha1(f"{number}:{seed}".encode()).hexdigest()[:5].upper()
    return f"TCN-{number:010d}-{tail}"


def new_category_id(conn: sqlite3.Connection, seed: str) -> str:
    return category_id(next_number(conn, "TransactionCategory", _FIRST_CATEGORY_NUMBER), seed)


def shared_category_rows(category: Row) -> list[Row]:
    """The shared categories FO creates for a new transaction category (pure)."""
    cid = str(category["CategoryId"])
    name = str(category.get("Name") or cid)
    return [{"CategoryId": f"{cid}-{n}", "Name": f"{name} ({ttype})",
             "TransactionCategoryId": cid, "TransactionType": ttype,
             "CanBeUsedInExpense": "No", "ExpenseType": None}
            for n, ttype in SHARED_TYPES]


def create_shared_categories(writer: Writer, category: Row) -> list[Row]:
    shared = entity("SharedCategories")
    assert shared is not None
    return [writer.insert(shared, row) for row in shared_category_rows(category)]
