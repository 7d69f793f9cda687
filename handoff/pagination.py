"""Keyset pagination for the console's lists: a page size checked at the edge and an opaque
cursor holding the last row's sort key.

Why keyset and not offset: a list ordered by an immutable key (a creation time and id, or a
monotonic id) continues exactly after the last row shown even while new rows arrive, and a
deep page costs one index seek instead of skipping every row before it.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, SQLColumnExpression, and_, or_

from handoff.http import BadRequest

MAX_CURSOR_CHARS = 200


def page_size(query: Mapping[str, str], default: int, maximum: int) -> int:
    """The `limit` query parameter: a whole number from 1 to `maximum`, else a 400."""
    raw = query.get("limit", str(default))
    if not raw.isascii() or not raw.isdigit() or not 1 <= int(raw) <= maximum:
        raise BadRequest(f"'limit' must be a whole number from 1 to {maximum}")
    return int(raw)


def encode_cursor(*key: str | int) -> str:
    """An opaque token for the row a page ended at."""
    return base64.urlsafe_b64encode(json.dumps(list(key)).encode()).decode().rstrip("=")


def decode_cursor(query: Mapping[str, str], shape: Sequence[type]) -> list[Any] | None:
    """The `cursor` query parameter as the key it encodes (types as in `shape`; a datetime is
    an ISO time), None without one; anything not made by encode_cursor is a 400."""
    raw = query.get("cursor")
    if raw is None:
        return None
    bad = BadRequest("'cursor' is not a cursor this list gave out; start again without it")
    if not raw or len(raw) > MAX_CURSOR_CHARS:
        raise bad
    try:
        key = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
    except (binascii.Error, ValueError):
        raise bad from None
    if not isinstance(key, list) or len(key) != len(shape):
        raise bad
    values: list[Any] = []
    for value, kind in zip(key, shape):
        if kind is datetime:
            if not isinstance(value, str):
                raise bad
            try:
                parsed = datetime.fromisoformat(value)
            except ValueError:
                raise bad from None
            if parsed.tzinfo is None:
                raise bad
            values.append(parsed)
        elif kind is int and isinstance(value, int) and not isinstance(value, bool):
            values.append(value)
        elif kind is str and isinstance(value, str) and 0 < len(value) <= 64:
            values.append(value)
        else:
            raise bad
    return values


def keyset_before(first: SQLColumnExpression[Any], second: SQLColumnExpression[Any],
                  key: Sequence[Any]) -> ColumnElement[bool]:
    """Rows that come after `key` in an order by (first, second), both descending."""
    return or_(first < key[0], and_(first == key[0], second < key[1]))
