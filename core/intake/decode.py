"""From a message as it arrived to a batch to store and things to set aside. Pure.

Every source enters here: a bridge's MQTT message (`decode_bridge_message`), and the
batches other doors build (imports, uploads, FHIR submissions) with `decode_batch`. One bad
reading is set aside with its reason while its batch mates are kept.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from pydantic import ValidationError

from core.contract import (
    HeldRecord,
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
    sender: str | None
    payload: bytes
    reason: str
    patient_id: uuid.UUID | None = None


@dataclass(frozen=True)
class DecodedBatch:
    """One delivery from one sender about one device, validated.

    `patient_id` is None for a bridge's batch until ingest places it (the bridge's patient);
    other doors know the patient before they decode. `claims_device`: the sender speaks for
    the patient (an import, an upload with the patient's secret), so the device is the
    patient's without a separate claim; a bridge's meter waits for the patient's claim.
    """

    topic: str
    payload: bytes  # as received, kept in case the database refuses the batch
    sender: str
    batch_id: uuid.UUID
    meter: MeterInfo
    readings: list[WireReading]
    held: list[HeldRecord] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    patient_id: uuid.UUID | None = None
    claims_device: bool = False

    @property
    def bridge_id(self) -> str:
        """The sender, for a bridge's batch (its confirmations go to this bridge)."""
        return self.sender


def describe(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors()[:MAX_REASON_ERRORS]:
        where = ".".join(str(p) for p in error["loc"]) or "payload"
        parts.append(f"{where}: {error['msg']}")
    more = exc.error_count() - MAX_REASON_ERRORS
    return "; ".join(parts) + (f" (+{more} more)" if more > 0 else "")


def decode_bridge_message(topic: str, payload: bytes) -> DecodedBatch | Rejected:
    """Validate a bridge's readings message; the topic names the sender."""
    sender = bridge_of(topic)
    if sender is None:
        return Rejected(topic, None, payload, "not a bridge readings topic")
    try:
        whole = ValidReadingsEnvelope.model_validate_json(payload)
    except ValidationError:
        pass  # some part is wrong: find out which, reading by reading
    else:
        if whole.bridge_id == sender:
            return DecodedBatch(
                topic, payload, sender, whole.batch_id, whole.meter, whole.readings, whole.held
            )
    try:
        envelope = ReadingsEnvelope.model_validate_json(payload)
    except ValidationError as exc:
        if any(e["type"] == "json_invalid" for e in exc.errors()):
            return Rejected(topic, sender, payload, f"not valid JSON: {exc.errors()[0]['msg']}")
        return Rejected(topic, sender, payload, f"schema: {describe(exc)}")
    if envelope.bridge_id != sender:
        return Rejected(
            topic,
            sender,
            payload,
            f"payload claims bridge {envelope.bridge_id!r} but came on {sender!r}'s topic",
        )
    return decode_items(
        topic,
        payload,
        sender,
        envelope.batch_id,
        envelope.meter,
        envelope.readings,
        envelope.held,
    )


def decode_items(
    topic: str,
    payload: bytes,
    sender: str,
    batch_id: uuid.UUID,
    meter: MeterInfo,
    readings: Sequence[Mapping[str, object]],
    held: Sequence[Mapping[str, object]] = (),
    *,
    patient_id: uuid.UUID | None = None,
    claims_device: bool = False,
) -> DecodedBatch:
    """Validate readings and held records one by one: the bad ones become dead letters
    (with the batch, the device and the index, so someone can find them), the rest a batch."""
    good: list[WireReading] = []
    kept: list[HeldRecord] = []
    bad: list[Rejected] = []
    for kind, items in (("reading", readings), ("held record", held)):
        for index, raw in enumerate(items):
            try:
                if kind == "reading":
                    good.append(WireReading.model_validate(raw))
                else:
                    kept.append(HeldRecord.model_validate(raw))
            except ValidationError as exc:
                evidence = json.dumps(
                    {
                        "batch_id": str(batch_id),
                        "meter": meter.model_dump(),
                        "index": index,
                        kind.replace(" ", "_"): raw,
                    },
                    default=str,
                ).encode()
                bad.append(
                    Rejected(
                        topic, sender, evidence, f"{kind} {index}: {describe(exc)}", patient_id
                    )
                )
    return DecodedBatch(
        topic,
        payload,
        sender,
        batch_id,
        meter,
        good,
        kept,
        bad,
        patient_id=patient_id,
        claims_device=claims_device,
    )
