"""Nightscout entries in and out. Pure: documents in, readings for the intake out; stored
readings in, documents out.

An uploaded entry (cgm-remote-monitor lib/api/entries/index.js, fields as xDrip+'s
NightscoutUploader.populateV1APIBGEntry, Juggluco's uploader.cpp `mkuploaditem` and the
LibreLinkUp uploader's apiv1.ts send them) becomes:

- `sgv` (mg/dL): a CGM reading (source `cgm`, interstitial fluid);
- `mbg` (mg/dL): a meter reading (source `meter`);
- `cal` (slope, intercept, scale): a calibration, kept beside the readings, not a reading.

The uploading `device` string is the device identity. Uploads have no sequence numbers: a
reading's identity is (patient, device, source, instant, value), so a re-upload is a
duplicate and a changed value at the same instant is stored and flagged as a conflict
(core.intake.identity). `meter_time` is the instant's UTC wall clock, so one entry sent
with `+0800` and again with `Z` is still one reading; the sender's offset is kept in
`time_offset_minutes`. The entry's own fields are kept in the reading's context (so a
dead letter shows the entry as it came); the trend and raw-signal ones are served back.
"""

from __future__ import annotations

import hashlib
import json
import math
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from api.nightscout.dates import DateError, Instant, instant_of, iso_utc, millis
from core.intake import reading_identity
from core.units import Unit
from core.vocabulary import SampleType, SourceKind

SGV = "sgv"
MBG = "mbg"
CAL = "cal"
SOURCES = {SGV: SourceKind.CGM, MBG: SourceKind.METER}
TYPE_OF_SOURCE = {SourceKind.CGM: SGV, SourceKind.METER: MBG}
# Fields of an entry kept with the reading as they came (so a dead letter shows the entry
# itself); the trend and raw-signal ones are served back.
KEPT_FIELDS = (
    "type",
    "date",
    "device",
    SGV,
    MBG,
    "direction",
    "trend",
    "delta",
    "noise",
    "filtered",
    "unfiltered",
    "rssi",
    "dateString",
    "sysTime",
)
CONTEXT_KEY = "nightscout"
# The device of an entry that names none.
DEFAULT_DEVICE = "nightscout-upload"
# A device identity is at most 64 characters (core.contract.MeterInfo); a longer name keeps
# its start and a digest of the whole, so two long names never merge.
MAX_DEVICE = 64
DEVICE_DIGEST = 15


@dataclass(frozen=True)
class UploadedReading:
    device: str
    source: SourceKind
    wire: dict[str, Any]  # a core.contract.WireReading, not yet validated


@dataclass(frozen=True)
class Calibration:
    device: str
    at: datetime
    offset_minutes: int
    slope: float | None
    intercept: float | None
    scale: float | None


@dataclass(frozen=True)
class Refused:
    index: int
    document: object
    reason: str


Parsed = UploadedReading | Calibration | Refused


def device_of(document: Mapping[str, object]) -> str:
    raw = document.get("device")
    name = raw.strip() if isinstance(raw, str) and raw.strip() else DEFAULT_DEVICE
    name = "".join(c for c in name if c.isprintable())
    if len(name) <= MAX_DEVICE:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:DEVICE_DIGEST]
    return f"{name[: MAX_DEVICE - DEVICE_DIGEST - 1]}~{digest}"


def _number(value: object, field: str) -> float:
    if isinstance(value, bool) or value is None:
        raise ValueError(f"{field} {value!r} is not a number")
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{field} {value!r} is not a number") from exc
    if not math.isfinite(number):
        raise ValueError(f"{field} {value!r} is not a number")
    return number


def _optional_number(document: Mapping[str, object], field: str) -> float | None:
    value = document.get(field)
    return None if value in (None, "") else _number(value, field)


def entry_type(document: Mapping[str, object]) -> str | None:
    kind = document.get("type")
    if isinstance(kind, str):
        return kind
    # Nightscout's own web client and some old uploaders leave the type out.
    for implied in (SGV, MBG):
        if implied in document:
            return implied
    return None


def parse(index: int, document: object) -> Parsed:
    """One uploaded entry: a reading for the intake, a calibration, or a refusal with a
    reason a person can act on."""
    if not isinstance(document, dict):
        return Refused(index, document, f"entry {index}: not a JSON object")
    kind = entry_type(document)
    if kind not in (SGV, MBG, CAL):
        return Refused(
            index, document, f"entry {index}: type {kind!r} is not stored (sgv, mbg, cal are)"
        )
    try:
        when = instant_of(document, "date", "dateString", "sysTime")
    except DateError as exc:
        return Refused(index, document, f"entry {index}: {exc}")
    if when is None:
        return Refused(index, document, f"entry {index}: no date, dateString or sysTime")
    device = device_of(document)
    try:
        if kind == CAL:
            return Calibration(
                device,
                when.at,
                when.offset_minutes,
                _optional_number(document, "slope"),
                _optional_number(document, "intercept"),
                _optional_number(document, "scale"),
            )
        value = _number(document.get(kind), kind)
    except ValueError as exc:
        return Refused(index, document, f"entry {index}: {exc}")
    return UploadedReading(device, SOURCES[kind], _wire(document, kind, when, value))


def _wire(document: Mapping[str, object], kind: str, when: Instant, value: float) -> dict[str, Any]:
    kept = {k: document[k] for k in KEPT_FIELDS if document.get(k) is not None}
    kept["utcOffset"] = when.offset_minutes
    return {
        "meter_time": when.at.replace(tzinfo=None).isoformat(),
        "time_offset_minutes": when.offset_minutes,
        "measured_at": when.at.isoformat(),
        "value": value,
        "unit": Unit.MG_DL.value,  # Nightscout's sgv and mbg are mg/dL
        "source": SOURCES[kind].value,
        "sample_type": SampleType.INTERSTITIAL_FLUID.value if kind == SGV else None,
        "context": {CONTEXT_KEY: kept},
    }


def document_id(identity: uuid.UUID) -> str:
    """A reading's `_id`: 24 hex digits, the shape of a MongoDB ObjectId (xDrip+ checks the
    length), stable across requests because it is the reading's identity."""
    return identity.hex[:24]


@dataclass(frozen=True)
class StoredReading:
    identity: uuid.UUID
    measured_at: datetime
    device: str
    source: SourceKind
    mg_dl: float
    context: Mapping[str, Any] | None


def reading_document(r: StoredReading) -> dict[str, Any]:
    """A stored reading as Nightscout serves an entry."""
    kind = TYPE_OF_SOURCE[r.source]
    kept: Mapping[str, Any] = (r.context or {}).get(CONTEXT_KEY) or {}
    doc: dict[str, Any] = {
        "_id": document_id(r.identity),
        "type": kind,
        kind: round(r.mg_dl),
        "date": millis(r.measured_at),
        "dateString": iso_utc(r.measured_at),
        "sysTime": iso_utc(r.measured_at),
        "utcOffset": kept.get("utcOffset", 0),
        "device": r.device,
    }
    for field in ("direction", "trend", "delta", "noise", "filtered", "unfiltered", "rssi"):
        if field in kept:
            doc[field] = kept[field]
    return doc


def uploaded_document(
    patient_id: uuid.UUID, device: str, source: SourceKind, reading: Any
) -> dict[str, Any]:
    """An accepted upload as the response lists it: the stored document."""
    identity = reading_identity(patient_id, device, source, None, reading.meter_time, reading.value)
    return reading_document(
        StoredReading(identity, reading.measured_at, device, source, reading.mg_dl, reading.context)
    )


def calibration_document(c: Calibration) -> dict[str, Any]:
    key = f"{c.device}|{millis(c.at)}"
    return {
        "_id": hashlib.md5(key.encode(), usedforsecurity=False).hexdigest()[:24],
        "type": CAL,
        "date": millis(c.at),
        "dateString": iso_utc(c.at),
        "sysTime": iso_utc(c.at),
        "utcOffset": c.offset_minutes,
        "device": c.device,
        "slope": c.slope,
        "intercept": c.intercept,
        "scale": c.scale,
    }


CSV_FIELDS = ("dateString", "date", "sgv", "direction", "device")


def csv_lines(documents: list[dict[str, Any]], separator: str = ",") -> str:
    """lib/api/entries/index.js `formatWithSeparator`: five fields, each JSON-encoded (so
    text is quoted), missing ones empty, CRLF between rows, no header."""

    def cell(value: object) -> str:
        return "" if value is None else json.dumps(value)

    return "\r\n".join(
        separator.join(cell(doc.get(field)) for field in CSV_FIELDS) for doc in documents
    )
