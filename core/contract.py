"""The MQTT contract, version 1: topics and the payloads that travel on them.

A bridge publishes one batch per meter sync on its own readings topic; the broker's ACL lets
it write only under its own id, so the topic names the sender. Ingest confirms each stored
batch on the bridge's acks topic; only that confirmation lets the bridge retire the batch
from its outbox (a broker may acknowledge a publish and still drop it under overload).
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, Final, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from core.units import Unit, to_mg_dl

TOPIC_ROOT = "glucose/v1"
READINGS_SCHEMA: Final = "glucobridge.readings/1"
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


MealTag = Literal["before_meal", "after_meal", "fasting", "casual", "bedtime"]


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


class MeterInfo(_Strict):
    serial: Annotated[str, Field(min_length=1, max_length=64)]
    manufacturer: str | None = None
    model: str | None = None


class WireReading(_Strict):
    """One meter record as the bridge publishes it.

    `meter_time` and `time_offset_minutes` are the raw fields from the meter (base time,
    local clock, no zone); `measured_at` is the instant the bridge computed from them after
    correcting the meter's clock. Identity is (meter serial, sequence number, meter time).
    """

    sequence_number: Annotated[int, Field(ge=0, le=0xFFFF)]
    meter_time: datetime
    time_offset_minutes: int | None = None
    measured_at: datetime
    value: Annotated[float, Field(allow_inf_nan=False)]
    unit: Unit
    sample_type: str | None = None
    sample_location: str | None = None
    sensor_status: list[str] = Field(default_factory=list)
    meal: MealTag | None = None
    carbohydrate_g: Annotated[float, Field(ge=0, le=1000)] | None = None
    context: dict[str, object] | None = None

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
        return self

    @property
    def mg_dl(self) -> float:
        return to_mg_dl(self.value, self.unit)


class ReadingsEnvelope(_Strict):
    """A batch as published, readings not yet validated one by one.

    Validation is in two steps so that one impossible reading is set aside while the good
    readings of the same batch are stored.
    """

    schema_: Literal["glucobridge.readings/1"] = Field(alias="schema")
    bridge_id: BridgeId
    batch_id: uuid.UUID
    meter: MeterInfo
    sent_at: datetime | None = None
    readings: Annotated[list[dict[str, object]], Field(max_length=5000)]

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class ValidReadingsEnvelope(ReadingsEnvelope):
    """The whole batch validated in one pass: the fast path when every reading is good."""

    readings: Annotated[list[WireReading], Field(max_length=5000)]  # type: ignore[assignment]


class ReadingsBatch(_Strict):
    """A batch as the bridge builds it; serialises to what ReadingsEnvelope reads."""

    schema_: Literal["glucobridge.readings/1"] = Field(default=READINGS_SCHEMA, alias="schema")
    bridge_id: BridgeId
    batch_id: uuid.UUID = Field(default_factory=uuid.uuid4)
    meter: MeterInfo
    sent_at: datetime | None = None
    readings: list[WireReading]

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    def to_json(self) -> bytes:
        return self.model_dump_json(by_alias=True).encode()


class BatchAck(_Strict):
    """Ingest's confirmation that one batch is committed; the bridge may retire it."""

    batch_id: uuid.UUID
    stored: int
    duplicates: int
    rejected: int


class Confirmations(_Strict):
    """What ingest publishes on a bridge's acks topic after a commit: every batch of that
    bridge the commit covered, in one message (a bridge sending single readings would
    otherwise cost one publish per reading)."""

    schema_: Literal["glucobridge.ack/1"] = Field(default=ACK_SCHEMA, alias="schema")
    batches: Annotated[list[BatchAck], Field(min_length=1)]

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    def to_json(self) -> bytes:
        return self.model_dump_json(by_alias=True).encode()
