"""Times as Nightscout documents carry them. Pure.

Uploaders send an instant as `date` (milliseconds since the epoch) and as `dateString` /
`sysTime` (ISO 8601 with the phone's offset written `+0800` by xDrip+'s SimpleDateFormat
`yyyy-MM-dd'T'HH:mm:ss.SSSZ`, `+08:00` by Juggluco's `Tdatestring`, `Z` by the LibreLinkUp
uploader's `toISOString()`). Nightscout keeps the offset as `utcOffset` (minutes) and writes
`dateString` / `sysTime` back in UTC (lib/server/entries.js `create`); so does this server.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

# An offset beyond ±14 h is no place on Earth: the string is wrong, not the zone.
MAX_OFFSET = timedelta(hours=14)


class DateError(ValueError):
    """A document's time cannot be read."""


@dataclass(frozen=True)
class Instant:
    at: datetime  # aware, UTC
    offset_minutes: int  # the sender's UTC offset, as Nightscout's utcOffset


def parse_iso(text: str) -> Instant:
    """An ISO 8601 string; without an offset it is UTC, as moment.parseZone reads it."""
    if not isinstance(text, str) or not text.strip():
        raise DateError(f"{text!r} is not a date")
    # Some clients send '+' unescaped in a query string, where it becomes a space
    # (lib/server/query.js does the same repair).
    cleaned = text.strip().replace(" ", "+") if "T" in text else text.strip()
    try:
        parsed = datetime.fromisoformat(cleaned)
    except ValueError as exc:
        raise DateError(f"{text!r} is not an ISO 8601 date") from exc
    if parsed.tzinfo is None:
        return Instant(parsed.replace(tzinfo=UTC), 0)
    offset = parsed.utcoffset() or timedelta(0)
    if abs(offset) > MAX_OFFSET:
        raise DateError(f"{text!r} has an impossible UTC offset")
    return Instant(parsed.astimezone(UTC), int(offset.total_seconds() // 60))


def from_millis(value: object) -> datetime:
    """`date`: milliseconds since the epoch, as a number or a numeric string."""
    if isinstance(value, bool):
        raise DateError(f"{value!r} is not a date in milliseconds")
    try:
        millis = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        raise DateError(f"{value!r} is not a date in milliseconds") from exc
    if not math.isfinite(millis):
        raise DateError(f"{value!r} is not a date in milliseconds")
    try:
        return datetime.fromtimestamp(millis / 1000, UTC)
    except (OverflowError, OSError, ValueError) as exc:
        raise DateError(f"{value!r} is out of range") from exc


def instant_of(document: dict[str, object], millis_key: str, *iso_keys: str) -> Instant | None:
    """The instant a document names: its milliseconds field first (what followers query on),
    else the first ISO field present; the offset comes from the ISO field when there is one.
    None when the document names no time at all."""
    iso: Instant | None = None
    for key in iso_keys:
        if document.get(key) not in (None, ""):
            iso = parse_iso(document[key])  # type: ignore[arg-type]
            break
    if document.get(millis_key) not in (None, ""):
        at = from_millis(document[millis_key])
        return Instant(at, iso.offset_minutes if iso is not None else 0)
    return iso


def millis(at: datetime) -> int:
    return round(at.timestamp() * 1000)


def iso_utc(at: datetime) -> str:
    """Nightscout's (moment's) toISOString: UTC, milliseconds, Z."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"


def http_date(at: datetime) -> str:
    """Last-Modified as Nightscout sends it (Date.toUTCString)."""
    return at.astimezone(UTC).strftime("%a, %d %b %Y %H:%M:%S GMT")
