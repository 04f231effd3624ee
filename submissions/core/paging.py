"""Keyset ("cursor") pagination: a page costs the same on row 50 and on row 100,000, and nothing counts
the whole table. Cursors are the sort key and the id of the row at the page's edge."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from django.db.models import QuerySet


@dataclass
class Page:
    rows: list
    older: str  # cursor for the next page in the sort order ("" at the end)
    newer: str  # cursor for the previous page ("" on the first page)


def keyset_page(queryset: QuerySet, *, field: str, size: int, after: str = "", before: str = "") -> Page:
    """Rows sorted by `field` descending, then id descending; `after`/`before` come from an earlier Page."""
    going_back = bool(before) and not after
    cursor = _decode(before if going_back else after)
    if cursor is not None:
        value, pk = cursor
        # A range on the sort field plus an exclusion for its ties (not an OR of the two), so the
        # database walks the (field, id) index from the cursor instead of scanning.
        if going_back:
            queryset = queryset.filter(**{f"{field}__gte": value}).exclude(**{field: value, "pk__lte": pk})
        else:
            queryset = queryset.filter(**{f"{field}__lte": value}).exclude(**{field: value, "pk__gte": pk})
    order = [field, "pk"] if going_back else [f"-{field}", "-pk"]
    rows = list(queryset.order_by(*order)[: size + 1])
    more = len(rows) > size
    rows = rows[:size]
    if going_back:
        rows.reverse()
        return Page(rows, older=_encode(rows[-1], field) if rows else "", newer=_encode(rows[0], field) if more else "")
    return Page(rows, older=_encode(rows[-1], field) if more else "", newer=_encode(rows[0], field) if cursor and rows else "")


# Ids are 64-bit. A bigger number names nothing, and SQLite raises OverflowError if asked about it.
MAX_ID = 2**63 - 1


def as_id(value: object) -> int | None:
    """An id from a query string or a form, or None for anything that cannot be one."""
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= len(str(MAX_ID)):
        number = int(value)
    else:
        return None
    return number if 0 < number <= MAX_ID else None


def _encode(row, field: str) -> str:
    return f"{getattr(row, field).isoformat()}_{row.pk}"


def _decode(cursor: str) -> tuple[datetime, int] | None:
    """A cursor from the query string; anything malformed just means the first page. Only cursors this
    module could have written pass: an aware time that converts to UTC (9999-12-31T23:59:59-14:00 does
    not, and the database adapter would raise OverflowError on it) and an id that fits 64 bits."""
    value, _, pk = cursor.rpartition("_")
    try:
        moment = datetime.fromisoformat(value)
        if moment.tzinfo is None:
            return None
        moment.astimezone(UTC)
    except (ValueError, OverflowError):
        return None
    number = as_id(pk)
    return None if number is None else (moment, number)
