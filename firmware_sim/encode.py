"""How a meter writes a result into its memory: GLS records from a model reading.

The meter stamps the result with its own clock (which may be wrong), encodes the value in
kg/L with exponent -5 as real meters do (111 mg/dL -> 111e-5), and, when the patient
tapped a meal marker or entered carbohydrates, insulin or exercise, a context record. A
result outside the meter's measuring range is a HI or LO: an SFLOAT infinity (+INF above,
-INF below) with the "result too high / too low" sensor status bit, as GLS defines them.
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from device.gls import (
    CarbohydrateId,
    DateTime,
    GlucoseMeasurement,
    GlucoseMeasurementContext,
    Meal,
    MedicationId,
    MedicationUnit,
    SampleLocation,
    SensorStatus,
    SFloat,
    SFloatSpecial,
    kg_per_l_from_mg_dl,
)
from firmware_sim.clock import MeterClock
from firmware_sim.memory import StoredRecord
from firmware_sim.model import ModelReading
from firmware_sim.profiles import MeterProfile

MEALS = {
    "before_meal": Meal.BEFORE_MEAL,
    "after_meal": Meal.AFTER_MEAL,
    "fasting": Meal.FASTING,
    "casual": Meal.CASUAL,
    "bedtime": Meal.BEDTIME,
}
# Carbohydrate amounts travel in kg: 45 g is 45e-3.
CARBS_EXPONENT = -3
# Insulin U-100: 1 unit is 0.01 mL = 1e-5 L; 5.5 U is 55e-6 L.
LITRES_PER_INSULIN_UNIT = Decimal("0.00001")
INSULIN_EXPONENT = -6
EXERCISE_INTENSITY_PCT = 60  # brisk walking
# The month of a measurement's base time: after flags (1), sequence number (2), year (2).
MONTH_BYTE = 5
# What CareSens-like meters were reported to send now and then.
INVALID_MONTH = 13
_BREAKFAST_BEFORE_H = 10
_LUNCH_BEFORE_H = 15


def _carbohydrate_id(hour: int) -> CarbohydrateId:
    if hour < _BREAKFAST_BEFORE_H:
        return CarbohydrateId.BREAKFAST
    if hour < _LUNCH_BEFORE_H:
        return CarbohydrateId.LUNCH
    return CarbohydrateId.DINNER


def _context(
    reading: ModelReading, sequence: int, local_hour: int
) -> GlucoseMeasurementContext | None:
    if reading.meal is None and reading.carbs_g is None and reading.exercise_minutes is None:
        return None
    carbs = None
    if reading.carbs_g is not None:
        carbs = SFloat.from_value(Decimal(round(reading.carbs_g)) / 1000, CARBS_EXPONENT)
    insulin = None
    if reading.insulin_units is not None:
        litres = Decimal(str(reading.insulin_units)) * LITRES_PER_INSULIN_UNIT
        insulin = SFloat.from_value(litres, INSULIN_EXPONENT)
    return GlucoseMeasurementContext(
        sequence_number=sequence,
        carbohydrate_id=_carbohydrate_id(local_hour) if carbs is not None else None,
        carbohydrate_kg=carbs,
        meal=MEALS[reading.meal] if reading.meal else None,
        exercise_duration_s=reading.exercise_minutes * 60 if reading.exercise_minutes else None,
        exercise_intensity_pct=EXERCISE_INTENSITY_PCT if reading.exercise_minutes else None,
        medication_id=MedicationId.RAPID_ACTING_INSULIN if insulin is not None else None,
        medication=insulin,
        medication_unit=MedicationUnit.LITRES,
    )


def _value(mg_dl: int, profile: MeterProfile) -> tuple[SFloat, SensorStatus | None]:
    low, high = profile.measuring_range_mg_dl
    if mg_dl > high:
        return SFloat.special_value(SFloatSpecial.POSITIVE_INFINITY), SensorStatus.RESULT_TOO_HIGH
    if mg_dl < low:
        return SFloat.special_value(SFloatSpecial.NEGATIVE_INFINITY), SensorStatus.RESULT_TOO_LOW
    return kg_per_l_from_mg_dl(mg_dl), None


def encode_reading(
    reading: ModelReading, sequence: int, clock: MeterClock, profile: MeterProfile
) -> StoredRecord:
    local = clock.local_at(reading.at)
    if profile.utc_base_time:
        base = clock.utc_at(reading.at)
        offset: int | None = round((local - base).total_seconds() / 60)
    else:
        base, offset = local, None
    context = _context(reading, sequence, local.hour) if profile.context_records else None
    concentration, status = _value(round(reading.mg_dl), profile)
    measurement = GlucoseMeasurement(
        sequence_number=sequence,
        base_time=DateTime.from_datetime(base.replace(microsecond=0)),
        time_offset_minutes=offset,
        concentration=concentration,
        sample_type=profile.sample_type,
        sample_location=SampleLocation.FINGER,
        sensor_status=status,
        context_follows=context is not None,
    )
    stored = StoredRecord.of(measurement, context)
    every = profile.invalid_month_every
    if every is not None and sequence % every == every - 1:
        stored = with_month(stored, INVALID_MONTH)
    return stored


def with_month(record: StoredRecord, month: int) -> StoredRecord:
    """The record with its base time's month byte overwritten, as a faulty meter sends it."""
    raw = bytearray(record.measurement)
    raw[MONTH_BYTE] = month
    return replace(record, measurement=bytes(raw))
