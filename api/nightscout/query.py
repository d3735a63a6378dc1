"""Nightscout's query string, the part real clients send. Pure.

`count` (default 10 for entries and device status, 100 for treatments or 1000 when a `find`
is given, as lib/api/*/index.js), `find[<field>][$gt|$gte|$lt|$lte|$eq]` on the time fields
(`date` in milliseconds or ISO, `dateString` / `sysTime` / `created_at` in ISO), and
`find[type]`. Without a bound on time, Nightscout answers from the last four days only
(lib/server/query.js `default_options`: deltaAgo = 2 × TWO_DAYS); so does this server.
Anything else under `find[...]` is refused rather than ignored: a filter silently dropped
would hand back data the client did not ask for.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from api.nightscout.dates import DateError, from_millis, parse_iso

# lib/server/query.js: queries without a time bound see this far back.
DEFAULT_WINDOW = timedelta(days=4)
# One request's answer: 30 days of 5-minute CGM is 8,640 entries; xDrip+'s follower asks for
# up to 2,880 (NightscoutFollow.java `safetyLimit`). count=0 means this many.
MAX_COUNT = 10_000

_FIND = re.compile(r"^find\[([A-Za-z_]+)\](?:\[\$(gt|gte|lt|lte|eq)\])?$")
_TIME_FIELDS = {"date", "dateString", "sysTime", "created_at", "mills"}


class QueryError(ValueError):
    """A query this server cannot answer as asked."""


@dataclass(frozen=True)
class Bound:
    at: datetime
    inclusive: bool


@dataclass(frozen=True)
class Query:
    count: int
    after: Bound | None  # lower bound on time
    before: Bound | None  # upper bound on time
    type: str | None  # find[type]

    def window(self, now: datetime) -> tuple[Bound, Bound | None]:
        """The lower bound to use: the client's, or the default window."""
        return self.after or Bound(now - DEFAULT_WINDOW, True), self.before


def _instant(field: str, raw: str) -> datetime:
    try:
        if field in ("date", "mills") and re.fullmatch(r"-?\d+(\.\d+)?", raw.strip()):
            return from_millis(raw)
        return parse_iso(raw).at
    except DateError as exc:
        raise QueryError(f"find[{field}]: {exc}") from exc


def parse(params: Iterable[tuple[str, str]], default_count: int, find_count: int) -> Query:
    count: int | None = None
    after: Bound | None = None
    before: Bound | None = None
    kind: str | None = None
    has_find = False
    for key, raw in params:
        if key == "count":
            try:
                count = int(raw)
            except ValueError as exc:
                raise QueryError(f"count {raw!r} is not a whole number") from exc
            if count < 0:
                raise QueryError("count must not be negative")
            continue
        if not key.startswith("find["):
            continue  # rr (xDrip+'s cache buster), token, secret, and the like
        has_find = True
        match = _FIND.fullmatch(key)
        if match is None:
            raise QueryError(f"{key} is not a filter this server understands")
        field, op = match.group(1), match.group(2) or "eq"
        if field == "type" and op == "eq":
            kind = raw
            continue
        if field not in _TIME_FIELDS:
            raise QueryError(f"filtering on {field} is not supported (time and type are)")
        at = _instant(field, raw)
        if op in ("gt", "gte"):
            after = Bound(at, op == "gte")
        elif op in ("lt", "lte"):
            before = Bound(at, op == "lte")
        else:
            after, before = Bound(at, True), Bound(at, True)
    if count is None:
        count = find_count if has_find else default_count
    return Query(min(count or MAX_COUNT, MAX_COUNT), after, before, kind)
