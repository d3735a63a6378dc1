"""Meter records as the MQTT contract's readings and held records: nothing a meter holds is
dropped.

Every record becomes exactly one of:

* a `WireReading`: raw meter fields beside the corrected instant, the record's raw bytes
  (and its context's) kept for a later decoder. A HI or LO (an SFLOAT infinity, or the
  "result too high / too low" status bits) is a reading whose value is the meter's limit
  (device.meter_ranges) with a range flag. Whether it is a control-solution test, and its
  source kind, are decided here with the one vocabulary (core.vocabulary).
* a `HeldRecord`: its raw bytes and the reason it cannot be a reading (an unknown base time,
  an impossible date, NaN or NRes, a length that does not fit its flags). A record whose
  time is unknown or impossible gets an estimated instant when readings on both sides of it
  (by sequence number, in this sync) have one: shown to the patient as an estimate to confirm
  or correct.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TypeVar

from pydantic import ValidationError

from core.contract import EARLIEST_PLAUSIBLE, MAX_FUTURE, HeldRecord, WireReading
from core.units import Unit
from core.vocabulary import (
    CarbohydrateMeal,
    Health,
    HeldReason,
    MealTag,
    RangeFlag,
    SampleLocation,
    SampleType,
    SensorStatus,
    Tester,
    is_control,
    source_of,
)
from device.clock import ClockCorrection
from device.gls import ConcentrationUnit, GlsError, OutOfRangeError, SFloatSpecial
from device.gls import SensorStatus as GlsSensorStatus
from device.gls.measurement import reserved_fields, sequence_number_of
from device.gls.wire import snake_name
from device.meter_ranges import MeasuringRange
from device.records import MeterRecord

V = TypeVar("V", bound=enum.StrEnum)

# Date Time fields: a record whose decoding fails on one of these has a time the meter could
# not have meant (month 13): held as an invalid time, not as a malformed record.
_DATE_FIELDS = frozenset({"year", "month", "day", "hours", "minutes", "seconds"})
_TIME_REASONS = frozenset({HeldReason.UNKNOWN_BASE_TIME, HeldReason.INVALID_TIME})
# The wire contract's bounds for context values; a meter's value outside them is kept in the
# reading's free-form context instead of failing the whole reading.
_HBA1C_PCT = (2.0, 25.0)
_MAX_CARBOHYDRATE_G = 1000.0
SEQUENCE_MODULO = 0x10000
# A refused reading's detail names this many of the contract's objections: enough to act on.
_SHOWN_ERRORS = 3


def _vocab(kind: type[V], member: enum.Enum | None) -> V | None:
    """The vocabulary word for a codec enum member (the same name in snake case)."""
    return None if member is None else kind(snake_name(member))


@dataclass(frozen=True)
class _Held:
    """A held record before its estimate is known."""

    record: MeterRecord
    reason: HeldReason
    detail: str
    meter_time: datetime | None = None
    reading: dict[str, object] | None = None  # the reading it is but for its time


@dataclass(frozen=True)
class Converted:
    readings: list[WireReading]
    held: list[HeldRecord]


def convert(
    records: Sequence[MeterRecord],
    correction: ClockCorrection,
    limits: MeasuringRange,
    *,
    now: datetime | None = None,
) -> Converted:
    """Each record as a reading or a held record, in the meter's order."""
    now = now or datetime.now(UTC)
    outcomes = [_one(r, correction, limits, now) for r in records]
    readings = [o for o in outcomes if isinstance(o, WireReading)]
    held = [
        _hold(o, _estimate(outcomes, i) if o.reason in _TIME_REASONS else None)
        for i, o in enumerate(outcomes)
        if isinstance(o, _Held)
    ]
    return Converted(readings, held)


def _hold(held: _Held, estimated_at: datetime | None) -> HeldRecord:
    return HeldRecord(
        sequence_number=held.record.sequence_number,
        reason=held.reason,
        detail=held.detail[:500],
        raw_record=held.record.raw,
        raw_context=held.record.raw_context,
        meter_time=held.meter_time,
        estimated_at=estimated_at,
        reading=held.reading,
    )


def _estimate(outcomes: list[WireReading | _Held], index: int) -> datetime | None:
    """Linear in the sequence number between the nearest readings before and after."""
    held = outcomes[index]
    assert isinstance(held, _Held)
    number = held.record.sequence_number
    before = next((o for o in reversed(outcomes[:index]) if isinstance(o, WireReading)), None)
    after = next((o for o in outcomes[index + 1 :] if isinstance(o, WireReading)), None)
    if number is None or before is None or after is None:
        return None
    if before.sequence_number is None or after.sequence_number is None:
        return None
    span = (after.sequence_number - before.sequence_number) % SEQUENCE_MODULO
    offset = (number - before.sequence_number) % SEQUENCE_MODULO
    if not 0 < offset < span or after.measured_at < before.measured_at:
        return None  # out of order, or the clock jumped back: no honest estimate
    return before.measured_at + (after.measured_at - before.measured_at) * (offset / span)


def _one(
    record: MeterRecord, correction: ClockCorrection, limits: MeasuringRange, now: datetime
) -> WireReading | _Held:
    m = record.measurement
    if m is None:
        problem = record.problem
        date_field = isinstance(problem, OutOfRangeError) and problem.field in _DATE_FIELDS
        reason = HeldReason.INVALID_TIME if date_field else HeldReason.MALFORMED
        return _Held(record, reason, f"the record does not decode: {problem}")
    meter_time = m.base_time.to_datetime() if m.base_time.is_known else None
    unit = Unit.MG_DL if m.unit is ConcentrationUnit.KG_PER_L else Unit.MMOL_L
    status = m.sensor_status or GlsSensorStatus(0)
    special = m.concentration.special if m.concentration is not None else None
    range_flag: RangeFlag | None = None
    if special is SFloatSpecial.POSITIVE_INFINITY or GlsSensorStatus.RESULT_TOO_HIGH in status:
        range_flag, value = RangeFlag.ABOVE_RANGE, limits.high(unit)
    elif special is SFloatSpecial.NEGATIVE_INFINITY or GlsSensorStatus.RESULT_TOO_LOW in status:
        range_flag, value = RangeFlag.BELOW_RANGE, limits.low(unit)
    else:
        number = m.mg_dl if unit is Unit.MG_DL else m.mmol_l
        if number is None:
            shown = "no concentration" if m.concentration is None else str(m.concentration)
            return _Held(record, HeldReason.NO_VALUE, f"no glucose value ({shown})", meter_time)
        value = round(number, 2)
    sample_type = _vocab(SampleType, m.sample_type)
    location = _vocab(SampleLocation, m.sample_location)
    fields = _context_fields(record, correction)
    reading: dict[str, object] = {
        "sequence_number": m.sequence_number,
        "time_offset_minutes": m.time_offset_minutes,
        "value": value,
        "unit": unit,
        "source": source_of(sample_type),
        "control": is_control(sample_type, location),
        "range_flag": range_flag,
        "sample_type": sample_type,
        "sample_location": location,
        "sensor_status": [SensorStatus(snake_name(s)) for s in GlsSensorStatus if s in status],
        "raw_record": record.raw,
        "raw_context": record.raw_context,
        "meal": fields.meal,
        "carbohydrate_g": fields.carbohydrate_g,
        "carbohydrate_meal": fields.carbohydrate_meal,
        "tester": fields.tester,
        "health": fields.health,
        "hba1c_pct": fields.hba1c_pct,
        "context": fields.context or None,
    }
    if meter_time is None:
        detail = f"meter time not known ({m.base_time})"
        return _Held(record, HeldReason.UNKNOWN_BASE_TIME, detail, None, _proposal(reading, now))
    try:
        user_facing = m.user_facing_time()
    except GlsError as exc:
        return _Held(record, HeldReason.INVALID_TIME, str(exc), meter_time, _proposal(reading, now))
    measured_at = correction.instant(user_facing)
    if not EARLIEST_PLAUSIBLE <= measured_at <= now + MAX_FUTURE:
        detail = f"meter time {user_facing.isoformat()} is not a plausible date"
        return _Held(record, HeldReason.INVALID_TIME, detail, meter_time, _proposal(reading, now))
    try:
        return WireReading.model_validate(
            {**reading, "meter_time": meter_time, "measured_at": measured_at}
        )
    except ValidationError as exc:
        return _Held(record, HeldReason.MALFORMED, _describe(exc), meter_time)


def _proposal(reading: dict[str, object], now: datetime) -> dict[str, object] | None:
    """The reading a held record is but for its time, as JSON, when the contract takes it
    (checked with the time as a stand-in); None when it would not be a reading anyway."""
    try:
        checked = WireReading.model_validate(
            {**reading, "meter_time": now.replace(tzinfo=None), "measured_at": now}
        )
    except ValidationError:
        return None
    return checked.model_dump(mode="json", exclude={"meter_time", "measured_at"}, exclude_none=True)


def _describe(exc: ValidationError) -> str:
    """What the contract refused, as a person reads it (the first few problems)."""
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:_SHOWN_ERRORS]
    )


@dataclass
class _ContextFields:
    """What a reading takes from its context record, and the rest as free-form context."""

    meal: MealTag | None = None
    carbohydrate_g: float | None = None
    carbohydrate_meal: CarbohydrateMeal | None = None
    tester: Tester | None = None
    health: Health | None = None
    hba1c_pct: float | None = None
    context: dict[str, object] = field(default_factory=dict)


def _context_fields(record: MeterRecord, correction: ClockCorrection) -> _ContextFields:
    out = _ContextFields()
    extra = out.context
    if correction.skew is not None:
        extra["meter_clock_skew_s"] = int(correction.skew.total_seconds())
    ignored = reserved_fields(record.raw)
    if ignored:
        extra["reserved_ignored"] = ignored
    if record.context_problem is not None:
        extra["context_unreadable"] = str(record.context_problem)
    c = record.context
    if c is None:
        return out
    out.meal = _vocab(MealTag, c.meal)
    out.tester = _vocab(Tester, c.tester)
    out.health = _vocab(Health, c.health)
    grams = c.carbohydrate_grams
    if grams is not None and 0 <= grams <= _MAX_CARBOHYDRATE_G:
        out.carbohydrate_g = float(grams)
        out.carbohydrate_meal = _vocab(CarbohydrateMeal, c.carbohydrate_id)
    elif c.carbohydrate_kg is not None:
        extra["carbohydrate"] = str(c.carbohydrate_kg)
    hba1c = c.hba1c_pct.decimal if c.hba1c_pct is not None else None
    if hba1c is not None and _HBA1C_PCT[0] <= hba1c <= _HBA1C_PCT[1]:
        out.hba1c_pct = float(hba1c)
    elif c.hba1c_pct is not None:
        extra["hba1c_pct"] = str(c.hba1c_pct)
    if c.exercise_duration_s is not None:
        extra["exercise_duration_s"] = c.exercise_duration_s
        extra["exercise_intensity_pct"] = c.exercise_intensity_pct
    if c.medication is not None:
        extra["medication"] = snake_name(c.medication_id) if c.medication_id is not None else None
        extra["medication_amount"] = str(c.medication)
        extra["medication_unit"] = c.medication_unit.symbol
    return out


def held_context(raw: bytes) -> HeldRecord:
    """A context record whose measurement never came: kept with its bytes."""
    return HeldRecord(
        sequence_number=sequence_number_of(raw),
        reason=HeldReason.CONTEXT_WITHOUT_MEASUREMENT,
        detail="a context record arrived without its measurement",
        raw_record=raw,
    )
