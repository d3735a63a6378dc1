"""From a message on a readings topic to rows to store and readings to set aside. Pure."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field

from pydantic import ValidationError

from core.contract import (
    MeterInfo,
    ReadingsEnvelope,
    ValidReadingsEnvelope,
    WireReading,
    bridge_of,
)

# A dead-letter reason is read by a person; the first few schema errors say enough.
MAX_REASON_ERRORS = 3


@dataclass(frozen=True)
class Rejected:
    """Something that cannot be stored, with the reason, kept in the dead-letter table."""

    topic: str
    bridge_id: str | None
    payload: bytes
    reason: str


@dataclass(frozen=True)
class DecodedBatch:
    topic: str
    payload: bytes  # as received, kept in case the database refuses the batch
    bridge_id: str
    batch_id: uuid.UUID
    meter: MeterInfo
    readings: list[WireReading]
    rejected: list[Rejected] = field(default_factory=list)


def _describe(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors()[:MAX_REASON_ERRORS]:
        where = ".".join(str(p) for p in error["loc"]) or "payload"
        parts.append(f"{where}: {error['msg']}")
    more = exc.error_count() - MAX_REASON_ERRORS
    return "; ".join(parts) + (f" (+{more} more)" if more > 0 else "")


def decode(topic: str, payload: bytes) -> DecodedBatch | Rejected:
    """Validate a readings message; one bad reading is set aside, the others are kept."""
    sender = bridge_of(topic)
    if sender is None:
        return Rejected(topic, None, payload, "not a bridge readings topic")
    try:
        whole = ValidReadingsEnvelope.model_validate_json(payload)
    except ValidationError:
        pass  # some part is wrong: find out which, reading by reading
    else:
        if whole.bridge_id == sender:
            return DecodedBatch(topic, payload, sender, whole.batch_id, whole.meter, whole.readings)
    try:
        envelope = ReadingsEnvelope.model_validate_json(payload)
    except ValidationError as exc:
        if any(e["type"] == "json_invalid" for e in exc.errors()):
            return Rejected(topic, sender, payload, f"not valid JSON: {exc.errors()[0]['msg']}")
        return Rejected(topic, sender, payload, f"schema: {_describe(exc)}")
    if envelope.bridge_id != sender:
        return Rejected(
            topic,
            sender,
            payload,
            f"payload claims bridge {envelope.bridge_id!r} but came on {sender!r}'s topic",
        )
    good: list[WireReading] = []
    bad: list[Rejected] = []
    for index, raw in enumerate(envelope.readings):
        try:
            good.append(WireReading.model_validate(raw))
        except ValidationError as exc:
            kept = json.dumps(
                {
                    "batch_id": str(envelope.batch_id),
                    "meter": envelope.meter.model_dump(),
                    "index": index,
                    "reading": raw,
                },
                default=str,
            ).encode()
            bad.append(Rejected(topic, sender, kept, f"reading {index}: {_describe(exc)}"))
    return DecodedBatch(topic, payload, sender, envelope.batch_id, envelope.meter, good, bad)
