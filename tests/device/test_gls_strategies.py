"""Hypothesis strategies for valid GLS values, shared by the GLS tests, and checks on them.

The strategies build values through the public constructors, so everything they produce is
something the simulator could send; the checks below make sure they reach every layout.
"""

from __future__ import annotations

import calendar

from hypothesis import given
from hypothesis import strategies as st

from device.gls import (
    CarbohydrateId,
    ConcentrationUnit,
    DateTime,
    GlucoseMeasurement,
    GlucoseMeasurementContext,
    Health,
    Meal,
    MedicationId,
    MedicationUnit,
    OpCode,
    Operator,
    RacpRequest,
    SampleLocation,
    SampleType,
    SensorStatus,
    SequenceNumberFilter,
    SFloat,
    UserFacingTimeFilter,
    codes,  # codes.Tester: a module-level "Test*" name would be collected
)
from device.gls.context import context_size
from device.gls.measurement import measurement_size

RESERVED_SFLOAT_RAW = 0x0801

uint16 = st.integers(0, 0xFFFF)
sfloats = st.integers(0, 0xFFFF).filter(lambda raw: raw != RESERVED_SFLOAT_RAW).map(SFloat.from_raw)


@st.composite
def date_times(draw: st.DrawFn, *, known: bool = False) -> DateTime:
    """Date Times, including year / month / day 0 ("not known") unless ``known``."""
    zero = st.nothing() if known else st.just(0)
    year = draw(zero | st.integers(1582, 9999))
    month = draw(zero | st.integers(1, 12))
    last_day = 31 if month == 0 else calendar.monthrange(year or 2000, month)[1]
    day = draw(zero | st.integers(1, last_day))
    return DateTime(
        year,
        month,
        day,
        draw(st.integers(0, 23)),
        draw(st.integers(0, 59)),
        draw(st.integers(0, 59)),
    )


@st.composite
def measurements(draw: st.DrawFn) -> GlucoseMeasurement:
    has_concentration = draw(st.booleans())
    return GlucoseMeasurement(
        sequence_number=draw(uint16),
        base_time=draw(date_times()),
        time_offset_minutes=draw(st.none() | st.integers(-0x8000, 0x7FFF)),
        concentration=draw(sfloats) if has_concentration else None,
        unit=draw(st.sampled_from(ConcentrationUnit)),
        sample_type=draw(st.sampled_from(SampleType)) if has_concentration else None,
        sample_location=draw(st.sampled_from(SampleLocation)) if has_concentration else None,
        sensor_status=draw(st.none() | st.integers(0, 0x0FFF).map(SensorStatus)),
        context_follows=draw(st.booleans()),
    )


@st.composite
def contexts(draw: st.DrawFn) -> GlucoseMeasurementContext:
    has_carbohydrate, has_tester, has_exercise, has_medication = (
        draw(st.booleans()) for _ in range(4)
    )
    return GlucoseMeasurementContext(
        sequence_number=draw(uint16),
        extended_flags=draw(st.sampled_from([None, 0])),
        carbohydrate_id=draw(st.sampled_from(CarbohydrateId)) if has_carbohydrate else None,
        carbohydrate_kg=draw(sfloats) if has_carbohydrate else None,
        meal=draw(st.none() | st.sampled_from(Meal)),
        tester=draw(st.sampled_from(codes.Tester)) if has_tester else None,
        health=draw(st.sampled_from(Health)) if has_tester else None,
        exercise_duration_s=draw(uint16) if has_exercise else None,
        exercise_intensity_pct=draw(st.integers(0, 100)) if has_exercise else None,
        medication_id=draw(st.sampled_from(MedicationId)) if has_medication else None,
        medication=draw(sfloats) if has_medication else None,
        medication_unit=draw(st.sampled_from(MedicationUnit)),
        hba1c_pct=draw(st.none() | sfloats),
    )


@st.composite
def racp_requests(draw: st.DrawFn) -> RacpRequest:
    op_code = draw(
        st.sampled_from(
            [
                OpCode.REPORT_STORED_RECORDS,
                OpCode.DELETE_STORED_RECORDS,
                OpCode.ABORT_OPERATION,
                OpCode.REPORT_NUMBER_OF_STORED_RECORDS,
            ]
        )
    )
    if op_code is OpCode.ABORT_OPERATION:
        return RacpRequest(op_code, Operator.NULL)
    operator = draw(st.sampled_from([o for o in Operator if o is not Operator.NULL]))
    if operator in (Operator.ALL_RECORDS, Operator.FIRST_RECORD, Operator.LAST_RECORD):
        return RacpRequest(op_code, operator)
    if draw(st.booleans()):
        low, high = sorted((draw(uint16), draw(uint16)))
        bounds = {
            Operator.LESS_THAN_OR_EQUAL_TO: (None, high),
            Operator.GREATER_THAN_OR_EQUAL_TO: (low, None),
            Operator.WITHIN_RANGE_OF: (low, high),
        }[operator]
        return RacpRequest(op_code, operator, SequenceNumberFilter(*bounds))
    first, second = draw(date_times(known=True)), draw(date_times(known=True))
    early, late = sorted((first, second), key=DateTime.to_datetime)
    time_bounds = {
        Operator.LESS_THAN_OR_EQUAL_TO: (None, late),
        Operator.GREATER_THAN_OR_EQUAL_TO: (early, None),
        Operator.WITHIN_RANGE_OF: (early, late),
    }[operator]
    return RacpRequest(op_code, operator, UserFacingTimeFilter(*time_bounds))


# -- the strategies reach every layout -----------------------------------------------------


@given(measurements())
def test_measurement_strategy_builds_records_whose_length_follows_their_flags(
    record: GlucoseMeasurement,
) -> None:
    assert len(bytes(record)) == measurement_size(record.flags)


@given(contexts())
def test_context_strategy_builds_records_whose_length_follows_their_flags(
    record: GlucoseMeasurementContext,
) -> None:
    assert len(bytes(record)) == context_size(record.flags)


def test_strategies_cover_every_measurement_flag_combination() -> None:
    seen: set[int] = set()

    @given(measurements())
    def collect(record: GlucoseMeasurement) -> None:
        seen.add(int(record.flags))

    collect()
    # 100 examples over 32 layouts: hypothesis should find most; a strategy stuck on a few
    # layouts (say, never sending a concentration) would leave this far below.
    assert len(seen) >= 16
