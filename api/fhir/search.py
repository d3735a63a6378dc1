"""FHIR R4 search parameters as this endpoint reads them (FHIR R4 search.html): `patient` /
`subject` references, `code` tokens, `date` with prefixes, `_count`, and the opaque paging
cursor of a `next` link. Pure: query values in, typed values or an OutcomeError out."""

from __future__ import annotations

import base64
import binascii
import json
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from api.fhir.errors import invalid

# A page of Observations: a day of 5-minute CGM by default, a few days at most.
DEFAULT_COUNT: Final = 100
MAX_COUNT: Final = 1000
CURSOR_PARAM: Final = "_cursor"
_PREFIXES: Final = ("ge", "gt", "le", "lt", "eq")
_UNSUPPORTED_PREFIXES: Final = ("ne", "sa", "eb", "ap")
_REFERENCE = re.compile(r"^(?:(?:.*/)?Patient/)?(?P<id>[0-9a-fA-F-]{36})$")
_YEAR = re.compile(r"^\d{4}$")
_MONTH = re.compile(r"^\d{4}-\d{2}$")
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def patient_reference(values: Sequence[str]) -> uuid.UUID:
    """The one patient a search is about: `Patient/{id}`, `{id}` or `{base}/Patient/{id}`."""
    if len(values) != 1 or "," in values[0]:
        raise invalid(
            "name exactly one patient (patient=Patient/{id}); system-wide search is not offered"
        )
    match = _REFERENCE.match(values[0].strip())
    if match is None:
        raise invalid(f"patient={values[0]!r} is not a reference to a patient of this server")
    try:
        return uuid.UUID(match["id"])
    except ValueError as exc:
        raise invalid(f"patient={values[0]!r} is not a patient id") from exc


def tokens(values: Sequence[str]) -> list[tuple[str | None, str]]:
    """`code` values: a comma is OR; `system|code`, `|code` (no system) or `code` (any)."""
    found = []
    for value in values:
        for part in value.split(","):
            if not part:
                continue
            system, bar, code = part.rpartition("|")
            found.append((system if bar else None, code))
    return found


def _next_month(day: datetime) -> datetime:
    return (day.replace(day=1) + timedelta(days=32)).replace(day=1)


def date_range(value: str) -> tuple[datetime, datetime]:
    """The instants a date search value stands for, [low, high) at its precision. A date
    without a time is a UTC day (or month, or year); a time must carry its zone."""
    try:
        if _YEAR.match(value):
            low = datetime(int(value), 1, 1, tzinfo=UTC)
            return low, low.replace(year=low.year + 1)
        if _MONTH.match(value):
            low = datetime.strptime(value, "%Y-%m").replace(tzinfo=UTC)
            return low, _next_month(low)
        if _DAY.match(value):
            low = datetime.strptime(value, "%Y-%m-%d").replace(tzinfo=UTC)
            return low, low + timedelta(days=1)
        at = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise invalid(f"date {value!r} is not a FHIR date or dateTime") from exc
    if at.tzinfo is None:
        raise invalid(f"date {value!r}: a time must carry its zone, e.g. 2026-11-01T00:00:00Z")
    step = timedelta(microseconds=1) if at.microsecond else timedelta(seconds=1)
    return at, at + step


@dataclass(frozen=True)
class Window:
    """[start, end): None means open on that side."""

    start: datetime | None = None
    end: datetime | None = None


def window(values: Sequence[str]) -> Window:
    """Every `date` parameter narrows the window (FHIR: repeated parameters are AND)."""
    start: datetime | None = None
    end: datetime | None = None
    for raw in values:
        prefix, value = raw[:2], raw[2:]
        if prefix in _UNSUPPORTED_PREFIXES:
            raise invalid(f"date prefix {prefix!r} is not supported (ge, gt, le, lt, eq)")
        if prefix not in _PREFIXES:
            prefix, value = "eq", raw
        low, high = date_range(value)
        if prefix in ("ge", "eq"):
            start = low if start is None else max(start, low)
        if prefix == "gt":
            start = high if start is None else max(start, high)
        if prefix in ("lt",):
            end = low if end is None else min(end, low)
        if prefix in ("le", "eq"):
            end = high if end is None else min(end, high)
    return Window(start, end)


def count(values: Sequence[str]) -> int:
    if not values:
        return DEFAULT_COUNT
    try:
        found = int(values[-1])
    except ValueError as exc:
        raise invalid("_count must be a whole number") from exc
    if not 1 <= found <= MAX_COUNT:
        raise invalid(f"_count must be 1-{MAX_COUNT}")
    return found


def encode_cursor(at: datetime, key: uuid.UUID) -> str:
    return base64.urlsafe_b64encode(json.dumps([at.isoformat(), str(key)]).encode()).decode()


def decode_cursor(values: Sequence[str]) -> tuple[datetime | None, uuid.UUID | None]:
    if not values:
        return None, None
    try:
        at, key = json.loads(base64.urlsafe_b64decode(values[-1].encode()))
        parsed, ident = datetime.fromisoformat(at), uuid.UUID(key)
    except (ValueError, TypeError, binascii.Error) as exc:
        raise invalid("the paging cursor is not one this server gave") from exc
    if parsed.tzinfo is None:
        raise invalid("the paging cursor is not one this server gave")
    return parsed, ident
