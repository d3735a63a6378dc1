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
from datetime import datetime

from core.vocabulary import SourceKind

_EPOCH = datetime(1970, 1, 1)


def _microseconds(meter_time: datetime) -> int:
    """The meter's wall clock as microseconds since 1970-01-01 00:00 of that same clock."""
    delta = meter_time.replace(tzinfo=None) - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _thousandths(value: float) -> int:
    """Half away from zero, as PostgreSQL's round() on double precision."""
    return math.floor(value * 1000 + 0.5) if value >= 0 else -math.floor(-value * 1000 + 0.5)


def _md5_uuid(*parts: str) -> uuid.UUID:
    return uuid.UUID(hashlib.md5("|".join(parts).encode(), usedforsecurity=False).hexdigest())


def reading_identity(
    patient_id: uuid.UUID | None,
    device: str,
    source: SourceKind,
    sequence_number: int | None,
    meter_time: datetime,
    value: float,
) -> uuid.UUID:
    return _md5_uuid(
        str(patient_id) if patient_id is not None else "",
        device,
        source.value,
        str(sequence_number) if sequence_number is not None else "",
        str(_microseconds(meter_time)),
        str(_thousandths(value)) if sequence_number is None else "",
    )


def instant_key(
    patient_id: uuid.UUID | None, device: str, source: SourceKind, meter_time: datetime
) -> uuid.UUID:
    """Readings of a device without sequence numbers that share this key were taken at the
    same instant; two different values there are both kept and flagged as a conflict."""
    return _md5_uuid(
        str(patient_id) if patient_id is not None else "",
        device,
        source.value,
        str(_microseconds(meter_time)),
    )


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
