"""Keyset paging for lists: an opaque cursor naming the last item of the previous page."""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from datetime import datetime
from typing import Annotated, Generic, Protocol, TypeVar

from fastapi import Query
from pydantic import BaseModel, Field

from api.problems import ProblemError

# Lists of people, grants or log rows: one screen's worth by default, a few screens at most.
DEFAULT_LIMIT = 50
MAX_LIMIT = 500

T = TypeVar("T")
# PostgreSQL's bigint: a larger id in a cursor would be a database error, not a page.
MAX_BIGINT = 2**63

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="items per page")]
Cursor = Annotated[
    str | None, Query(max_length=200, description="`next_cursor` of the previous page")
]


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = Field(
        description="pass as `cursor` for the next page; null at the end"
    )


def encode(at: datetime | int, key: uuid.UUID | str | int) -> str:
    value = at.isoformat() if isinstance(at, datetime) else at
    return base64.urlsafe_b64encode(json.dumps([value, str(key)]).encode()).decode()


def _bad() -> ProblemError:
    return ProblemError(
        422, "invalid-cursor", "Invalid cursor", "the cursor is not one this API returned"
    )


def decode_time(cursor: str | None) -> tuple[datetime | None, uuid.UUID | None]:
    """A cursor of (timestamp, uuid), or (None, None) for the first page."""
    if cursor is None:
        return None, None
    try:
        at, key = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        parsed = datetime.fromisoformat(at)
        ident = uuid.UUID(key)
    except (ValueError, TypeError, AttributeError, binascii.Error) as exc:
        raise _bad() from exc
    if parsed.tzinfo is None:
        raise _bad()
    return parsed, ident


def decode_text(cursor: str | None) -> tuple[datetime | None, str | None]:
    """A cursor of (timestamp, text key), or (None, None) for the first page."""
    if cursor is None:
        return None, None
    try:
        at, key = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        parsed = datetime.fromisoformat(at)
    except (ValueError, TypeError, binascii.Error) as exc:
        raise _bad() from exc
    if parsed.tzinfo is None or not isinstance(key, str) or "\x00" in key:
        raise _bad()
    return parsed, key


def decode_key(cursor: str | None) -> uuid.UUID | None:
    """A cursor of a uuid alone, or None for the first page."""
    if cursor is None:
        return None
    try:
        _, key = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        return uuid.UUID(key)
    except (ValueError, TypeError, AttributeError, binascii.Error) as exc:
        raise _bad() from exc


def decode_int(cursor: str | None) -> int | None:
    """A cursor of a serial id, or None for the first page."""
    if cursor is None:
        return None
    try:
        value, _ = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        number = int(value)
    except (ValueError, TypeError, binascii.Error) as exc:
        raise _bad() from exc
    if not 0 < number < MAX_BIGINT:
        raise _bad()
    return number


class _Keyed(Protocol):
    @property
    def created_at(self) -> datetime: ...
    @property
    def id(self) -> uuid.UUID | str: ...


K = TypeVar("K", bound=_Keyed)


def page_of(rows: list[K], limit: int) -> Page[K]:
    """A page from the `limit + 1` rows fetched in (created_at, id) order: the extra row
    only tells that there is more, and the cursor names the page's last row."""
    more = len(rows) > limit
    rows = rows[:limit]
    last = rows[-1] if more and rows else None
    return Page(items=rows, next_cursor=encode(last.created_at, last.id) if last else None)
