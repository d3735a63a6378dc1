"""A reading's identity: what makes two deliveries of it one reading.

(patient, device, source, sequence number, meter time) for a device with sequence numbers;
a device without them (a CGM app's upload, an imported file) is identified by its meter time
and its value, so a re-upload is a duplicate but a changed value at the same instant is a
second reading, kept and flagged (`instant_key` finds its sibling). The same formula is
written in SQL as `reading_identity()` (migration 0005) for rows stored before it; a test
holds the two equal.
"""

from __future__ import annotations

import hashlib
import math
import uuid
from datetime import datetime, timedelta

from core.vocabulary import SourceKind

_EPOCH = datetime(1970, 1, 1)
_MICROSECOND = timedelta(microseconds=1)


def _microseconds(meter_time: datetime) -> int:
    """The meter's wall clock as microseconds since 1970-01-01 00:00 of that same clock."""
    return (meter_time.replace(tzinfo=None) - _EPOCH) // _MICROSECOND


def _thousandths(value: float) -> int:
    """Half away from zero, as PostgreSQL's round() on double precision."""
    return math.floor(value * 1000 + 0.5) if value >= 0 else -math.floor(-value * 1000 + 0.5)


def _md5_uuid(*parts: str) -> uuid.UUID:
    return _md5("|".join(parts))


def _md5(text: str) -> uuid.UUID:
    return uuid.UUID(bytes=hashlib.md5(text.encode(), usedforsecurity=False).digest())


def identity_prefix(patient_id: uuid.UUID | None, device: str, source: SourceKind) -> str:
    """What the identities of one device's readings share: computed once per batch, not once
    per reading, by the writer (`identity_of`, `instant_of`)."""
    return f"{patient_id if patient_id is not None else ''}|{device}|{source.value}|"


def identity_of(
    prefix: str, sequence_number: int | None, meter_time: datetime, value: float
) -> uuid.UUID:
    """`reading_identity`, from the device's `identity_prefix`."""
    micro = _microseconds(meter_time)
    if sequence_number is None:
        text = f"{prefix}|{micro}|{_thousandths(value)}"
    else:
        text = f"{prefix}{sequence_number}|{micro}|"
    return _md5(text)


def instant_of(prefix: str, meter_time: datetime) -> uuid.UUID:
    """`instant_key`, from the device's `identity_prefix`."""
    return _md5(f"{prefix}{_microseconds(meter_time)}")


def reading_identity(
    patient_id: uuid.UUID | None,
    device: str,
    source: SourceKind,
    sequence_number: int | None,
    meter_time: datetime,
    value: float,
) -> uuid.UUID:
    prefix = identity_prefix(patient_id, device, source)
    return identity_of(prefix, sequence_number, meter_time, value)


def instant_key(
    patient_id: uuid.UUID | None, device: str, source: SourceKind, meter_time: datetime
) -> uuid.UUID:
    """Readings of a device without sequence numbers that share this key were taken at the
    same instant; two different values there are both kept and flagged as a conflict."""
    return instant_of(identity_prefix(patient_id, device, source), meter_time)


def held_identity(
    patient_id: uuid.UUID | None, device: str, sequence_number: int | None, raw: bytes
) -> uuid.UUID:
    """A held record sent twice (a re-sent batch) is kept once."""
    return _md5_uuid(
        str(patient_id) if patient_id is not None else "",
        device,
        str(sequence_number) if sequence_number is not None else "",
        raw.hex(),
    )
