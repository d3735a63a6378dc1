"""Treatments and device status documents as uploaders send them. Pure.

Treatments (cgm-remote-monitor lib/api/treatments/index.js and lib/server/treatments.js
`prepareData`; fields as xDrip+'s NightscoutUploader.populateV1APITreatmentEntry and
Juggluco's uploadtreatment.cpp send them): `created_at` (else `timestamp`, else now, as
Nightscout), `eventType`, `carbs` (g), `insulin` (U), `glucose` with `glucoseType` and
`units` for a BG check, `notes`, `enteredBy`. One treatment per Nightscout identity: the
client's `_id` (xDrip+ puts one on every PUT), else its `identifier` or `uuid`, else
(created_at, eventType), as Nightscout's `upsertQueryFor`.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from api.nightscout.dates import DateError, from_millis, iso_utc, parse_iso

OBJECT_ID = re.compile(r"^[0-9a-fA-F]{24}$")
# The contract's bound on a meal's carbohydrates (core.contract.WireReading.carbohydrate_g).
MAX_CARBS_G = 1000.0
# No single dose comes near this; a larger number is a unit or typing mistake, kept aside.
MAX_INSULIN_U = 300.0
# A treatment or status is a small document; Loop's device status, the largest real one,
# is a few kilobytes. Beyond this it is not a document a follower needs.
MAX_DOCUMENT_BYTES = 64 * 1024
# Fields a client may put in a body to authenticate (Nightscout deletes them too).
CREDENTIAL_FIELDS = ("secret", "token")


class DocumentError(ValueError):
    """A treatment or status that cannot be kept."""


@dataclass(frozen=True)
class Treatment:
    ns_id: str
    created_at: datetime
    event_type: str
    carbs: float | None
    insulin: float | None
    document: dict[str, Any]


def _amount(document: dict[str, Any], field: str, limit: float) -> float | None:
    value = document.get(field)
    if value in (None, ""):
        return None
    if isinstance(value, bool):
        raise DocumentError(f"{field} {value!r} is not a number")
    try:
        number = float(value)
    except (TypeError, ValueError) as exc:
        raise DocumentError(f"{field} {value!r} is not a number") from exc
    if not math.isfinite(number) or not 0 <= number <= limit:
        raise DocumentError(f"{field} {value!r} is outside 0-{limit:g}")
    return number


def _time(document: dict[str, Any], now: datetime) -> tuple[datetime, int]:
    for field in ("eventTime", "created_at"):
        if document.get(field) not in (None, ""):
            found = parse_iso(document[field])
            return found.at, found.offset_minutes
    stamp = document.get("timestamp")
    if stamp not in (None, ""):
        if isinstance(stamp, str) and not re.fullmatch(r"\d+(\.\d+)?", stamp):
            found = parse_iso(stamp)
            return found.at, found.offset_minutes
        return from_millis(stamp), 0
    return now, 0


def _checked(document: object) -> dict[str, Any]:
    if not isinstance(document, dict):
        raise DocumentError("not a JSON object")
    if len(json.dumps(document, default=str)) > MAX_DOCUMENT_BYTES:
        raise DocumentError(f"larger than {MAX_DOCUMENT_BYTES} bytes")
    return {k: v for k, v in document.items() if k not in CREDENTIAL_FIELDS}


def _digest(*parts: str) -> str:
    return hashlib.md5("|".join(parts).encode(), usedforsecurity=False).hexdigest()[:24]


def treatment(document: object, now: datetime) -> Treatment:
    doc = _checked(document)
    try:
        at, offset = _time(doc, now)
    except DateError as exc:
        raise DocumentError(str(exc)) from exc
    event_type = doc.get("eventType")
    event_type = event_type if isinstance(event_type, str) else ""
    carbs = _amount(doc, "carbs", MAX_CARBS_G)
    insulin = _amount(doc, "insulin", MAX_INSULIN_U)
    given = doc.get("_id")
    if isinstance(given, str) and OBJECT_ID.fullmatch(given):
        ns_id = given.lower()
    elif isinstance(doc.get("identifier") or doc.get("uuid"), str):
        ns_id = _digest("identifier", str(doc.get("identifier") or doc.get("uuid")))
    else:
        ns_id = _digest("time", iso_utc(at), event_type)
    doc.pop("eventTime", None)
    doc.update(
        {
            "_id": ns_id,
            "created_at": iso_utc(at),
            "utcOffset": offset,
            "eventType": event_type,
            "carbs": carbs,
            "insulin": insulin,
        }
    )
    return Treatment(ns_id, at, event_type, carbs, insulin, doc)


@dataclass(frozen=True)
class DeviceStatus:
    created_at: datetime
    device: str | None
    document: dict[str, Any]


def device_status(document: object, now: datetime) -> DeviceStatus:
    doc = _checked(document)
    doc.pop("_id", None)  # the stored row's id becomes the _id
    try:
        if doc.get("created_at") not in (None, ""):
            found = parse_iso(doc["created_at"])
            at, offset = found.at, found.offset_minutes
        else:
            at, offset = now, 0
    except DateError as exc:
        raise DocumentError(str(exc)) from exc
    doc["created_at"] = iso_utc(at)
    doc["utcOffset"] = offset
    device = doc.get("device")
    return DeviceStatus(at, device if isinstance(device, str) else None, doc)
