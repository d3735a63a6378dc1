"""The MQTT contract: topics and the payloads that travel on them.

A bridge publishes one batch per meter sync on its own readings topic; the broker lets it
write only under its own id, so the topic names the sender, and ingest attaches the readings
to the patient that bridge belongs to (never to a patient a payload names). Ingest confirms
each stored batch on the bridge's acks topic; only that confirmation lets the bridge retire
the batch from its outbox (a broker may acknowledge a publish and still drop it under
overload).

Payload versions: `glucobridge.readings/2` (this one) adds the source kind, the
control-solution and out-of-range flags, the raw record bytes and the records a bridge could
not turn into readings (`held`); ingest still reads `/1` from bridges not yet upgraded.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, Final, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    model_validator,
)

from core.units import Unit, to_mg_dl
from core.vocabulary import (
    CarbohydrateMeal,
    Health,
    HeldReason,
    MealTag,
    RangeFlag,
    SampleLocation,
    SampleType,
    SensorStatus,
    SourceKind,
    Tester,
    is_control,
    source_of,
)

TOPIC_ROOT = "glucose/v1"
READINGS_SCHEMA: Final = "glucobridge.readings/2"
# What bridges published before the held records and raw bytes: still accepted.
READINGS_SCHEMA_V1: Final = "glucobridge.readings/1"
ACK_SCHEMA: Final = "glucobridge.ack/1"
STATUS_SCHEMA: Final = "glucobridge.status/1"

# A bridge id is also its MQTT user name and a topic level: no wildcards, separators or
# spaces, and short enough to read in a log line.
BRIDGE_ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
# User names the stack reserves for its own services; a bridge may not take them.
RESERVED_IDS = frozenset({"ingest", "api", "admin"})
# The sender of readings imported from CSV history; no registered bridge may take it.
IMPORT_BRIDGE_ID = "csv-import"

# Meters report 20-600 mg/dL; anything outside 10-1000 mg/dL is not a blood glucose value
# but a corrupted record (0 mg/dL, 0xFFFF, a unit mix-up) and is set aside, not stored.
MIN_PLAUSIBLE_MG_DL = 10.0
MAX_PLAUSIBLE_MG_DL = 1000.0
# No glucometer with Bluetooth existed before this; an earlier date is a reset clock.
EARLIEST_PLAUSIBLE = datetime(2005, 1, 1, tzinfo=UTC)
# A meter clock may run ahead; more than a day ahead of the receiver is not a drift but
# a wrong clock, and such a reading is set aside for someone to look at.
MAX_FUTURE = timedelta(days=1)


def _check_bridge_id(value: str) -> str:
    if not BRIDGE_ID_PATTERN.fullmatch(value):
        raise ValueError("bridge id must be 1-64 of a-z, 0-9, '-', '_' and start alphanumeric")
    if value in RESERVED_IDS:
        raise ValueError(f"bridge id {value!r} is reserved")
    return value


def _check_new_bridge_id(value: str) -> str:
    if value == IMPORT_BRIDGE_ID:
        raise ValueError(f"bridge id {value!r} is reserved for imports")
    return value


BridgeId = Annotated[str, AfterValidator(_check_bridge_id)]
# What a bridge may be registered as: a BridgeId that is not the importer's.
NewBridgeId = Annotated[str, AfterValidator(_check_bridge_id), AfterValidator(_check_new_bridge_id)]


def readings_topic(bridge_id: str) -> str:
    return f"{TOPIC_ROOT}/bridges/{bridge_id}/readings"


def acks_topic(bridge_id: str) -> str:
    return f"{TOPIC_ROOT}/bridges/{bridge_id}/acks"


def status_topic(bridge_id: str) -> str:
    return f"{TOPIC_ROOT}/bridges/{bridge_id}/status"


def patient_alerts_topic(patient_id: str) -> str:
    """Alerts for one patient's home devices (alerts worker -> devices, QoS 1)."""
    return f"{TOPIC_ROOT}/patients/{patient_id}/alerts"


# What ingest subscribes to: every bridge's readings.
ALL_READINGS = f"{TOPIC_ROOT}/bridges/+/readings"


def shared(topic: str, group: str) -> str:
    """An MQTT v5 shared subscription: the broker spreads messages over the group."""
    return f"$share/{group}/{topic}"


def bridge_of(topic: str) -> str | None:
    """The bridge id a topic belongs to, or None when it is not a bridge topic."""
    parts = topic.split("/")
    if len(parts) == 5 and "/".join(parts[:2]) == TOPIC_ROOT and parts[2] == "bridges":
        return parts[3]
    return None


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _from_hex(value: object) -> object:
    if isinstance(value, str):
        try:
            return bytes.fromhex(value)
        except ValueError as exc:
            raise ValueError("raw bytes must be written as hexadecimal") from exc
    return value


# Raw record bytes travel as hexadecimal text (a GLS record is at most a few dozen bytes).
RawBytes = Annotated[
    bytes,
    BeforeValidator(_from_hex),
    PlainSerializer(lambda b: b.hex(), return_type=str, when_used="json"),
    Field(max_length=512),
]


class MeterInfo(_Strict):
    serial: Annotated[str, Field(min_length=1, max_length=64)]
    manufacturer: str | None = None
    model: str | None = None


class WireReading(_Strict):
    """One reading as a sender publishes it.

    `meter_time` and `time_offset_minutes` are the raw fields from the device (base time,
    local clock, no zone); `measured_at` is the instant the sender computed from them after
    correcting the device's clock. A reading's identity is (patient, device, source,
    sequence number, meter time); a source without sequence numbers is identified by its
    meter time and value, so a changed value at the same instant is kept, not dropped.

    `source` and `control` are decided once: by the sender when it knows (a CGM uploader,
    the GLS codec), else here from the sample type and location (`core.vocabulary`).
    """

    sequence_number: Annotated[int, Field(ge=0, le=0xFFFF)] | None = None
    meter_time: datetime
    time_offset_minutes: int | None = None
    measured_at: datetime
    value: Annotated[float, Field(allow_inf_nan=False)]
    unit: Unit
    source: SourceKind | None = None
    control: bool | None = None
    # HI / LO: the value is then the meter's limit (600 / 20 mg/dL where it says nothing).
    range_flag: RangeFlag | None = None
    sample_type: SampleType | None = None
    sample_location: SampleLocation | None = None
    sensor_status: list[SensorStatus] = Field(default_factory=list)
    meal: MealTag | None = None
    carbohydrate_g: Annotated[float, Field(ge=0, le=1000)] | None = None
    carbohydrate_meal: CarbohydrateMeal | None = None
    tester: Tester | None = None
    health: Health | None = None
    hba1c_pct: Annotated[float, Field(ge=2, le=25)] | None = None
    context: dict[str, object] | None = None
    # The record as the device sent it (GLS measurement, and its context record), so a
    # later decoder can read it again.
    raw_record: RawBytes | None = None
    raw_context: RawBytes | None = None

    @model_validator(mode="after")
    def _plausible(self) -> WireReading:
        if self.meter_time.tzinfo is not None:
            raise ValueError("meter_time is the meter's raw clock and carries no zone")
        if self.measured_at.tzinfo is None:
            raise ValueError("measured_at must carry a zone (an instant)")
        mg_dl = to_mg_dl(self.value, self.unit)
        if not MIN_PLAUSIBLE_MG_DL <= mg_dl <= MAX_PLAUSIBLE_MG_DL:
            raise ValueError(
                f"{self.value:g} {self.unit} is not a plausible glucose value "
                f"({MIN_PLAUSIBLE_MG_DL:g}-{MAX_PLAUSIBLE_MG_DL:g} mg/dL)"
            )
        now = datetime.now(UTC)
        if not EARLIEST_PLAUSIBLE <= self.measured_at <= now + MAX_FUTURE:
            raise ValueError(f"measured_at {self.measured_at.isoformat()} is not a plausible date")
        if self.source is None:
            object.__setattr__(self, "source", source_of(self.sample_type))
        if self.control is None:
            object.__setattr__(self, "control", is_control(self.sample_type, self.sample_location))
        return self

    @property
    def mg_dl(self) -> float:
        return to_mg_dl(self.value, self.unit)

    @property
    def source_kind(self) -> SourceKind:
        """The source, decided by the validator when the sender did not say."""
        assert self.source is not None
        return self.source

    @property
    def is_control(self) -> bool:
        return bool(self.control)


class HeldRecord(_Strict):
    """A record a device holds that the sender could not turn into a reading (a clock never
    set, NaN or NRes, a length that does not fit its flags): published with its raw bytes
    and the reason, so it is kept where the patient can see it, never lost."""

    sequence_number: Annotated[int, Field(ge=0, le=0xFFFF)] | None = None
    reason: HeldReason
    detail: Annotated[str, Field(max_length=500)]
    raw_record: RawBytes
    raw_context: RawBytes | None = None
    # The device's own clock fields when they could be read (no zone)...
    meter_time: datetime | None = None
    # ...and, for a record whose time is unknown, the instant its neighbours' sequence
    # numbers put it at: shown as an estimate for the patient to confirm or correct.
    estimated_at: datetime | None = None
    # For a record whose only fault is its time: the reading it is but for the instant (a
    # WireReading's fields without measured_at and meter_time), completed with the time the
    # patient confirms or gives.
    reading: dict[str, object] | None = None

    @model_validator(mode="after")
    def _zones(self) -> HeldRecord:
        if self.meter_time is not None and self.meter_time.tzinfo is not None:
            raise ValueError("meter_time is the meter's raw clock and carries no zone")
        if self.estimated_at is not None and self.estimated_at.tzinfo is None:
            raise ValueError("estimated_at must carry a zone (an instant)")
        return self


ReadingsSchema = Literal["glucobridge.readings/2", "glucobridge.readings/1"]


class ReadingsEnvelope(_Strict):
    """A batch as published, readings not yet validated one by one.

    Validation is in two steps so that one impossible reading is set aside while the good
    readings of the same batch are stored.
    """

    schema_: ReadingsSchema = Field(alias="schema")
    bridge_id: BridgeId
    batch_id: uuid.UUID
    meter: MeterInfo
    sent_at: datetime | None = None
    readings: Annotated[list[dict[str, object]], Field(max_length=5000)]
    held: Annotated[list[dict[str, object]], Field(max_length=5000)] = Field(default_factory=list)

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class ValidReadingsEnvelope(ReadingsEnvelope):
    """The whole batch validated in one pass: the fast path when every reading is good."""

    readings: Annotated[list[WireReading], Field(max_length=5000)]  # type: ignore[assignment]
    held: Annotated[list[HeldRecord], Field(max_length=5000)] = Field(  # type: ignore[assignment]
        default_factory=list
    )


class ReadingsBatch(_Strict):
    """A batch as the bridge builds it; serialises to what ReadingsEnvelope reads."""

    schema_: Literal["glucobridge.readings/2"] = Field(default=READINGS_SCHEMA, alias="schema")
    bridge_id: BridgeId
    batch_id: uuid.UUID = Field(default_factory=uuid.uuid4)
    meter: MeterInfo
    sent_at: datetime | None = None
    readings: list[WireReading]
    held: list[HeldRecord] = Field(default_factory=list)

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    def to_json(self) -> bytes:
        return self.model_dump_json(by_alias=True, exclude_none=True).encode()


class BatchAck(_Strict):
    """Ingest's confirmation that one batch is committed; the bridge may retire it."""

    batch_id: uuid.UUID
    stored: int
    duplicates: int
    rejected: int
    held: int = 0


class Confirmations(_Strict):
    """What ingest publishes on a bridge's acks topic after a commit: every batch of that
    bridge the commit covered, in one message (a bridge sending single readings would
    otherwise cost one publish per reading)."""

    schema_: Literal["glucobridge.ack/1"] = Field(default=ACK_SCHEMA, alias="schema")
    batches: Annotated[list[BatchAck], Field(min_length=1)]

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    def to_json(self) -> bytes:
        return self.model_dump_json(by_alias=True).encode()
