"""Glucose Measurement Context (0x2A34): all 256 flag combinations, errors, meaning."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given

from device.gls import (
    CarbohydrateId,
    ContextFlags,
    GlucoseMeasurementContext,
    Health,
    InconsistentFieldsError,
    LengthError,
    Meal,
    MedicationId,
    MedicationUnit,
    OutOfRangeError,
    ReservedValueError,
    SFloat,
    SFloatSpecial,
    codes,  # codes.Tester: a module-level "Test*" name would be collected by pytest
)
from device.gls.context import context_size

from .test_gls_strategies import contexts

# One value per optional field, in wire order.
SEQUENCE = "1e00"  # 30: the Contour Next One record's context
EXTENDED = "00"
CARBOHYDRATE = "01" + "32d0"  # breakfast, 50e-3 kg
MEAL = "01"  # before meal
TESTER_HEALTH = "51"  # health no issues (5, high nibble), tester self (1)
EXERCISE = "100e" + "4b"  # 3600 s at 75 %
MEDICATION = "01" + "05d0"  # rapid-acting insulin, 5e-3 (kg or L per bit 5)
HBA1C = "41f0"  # 65e-1 %

_FIELDS = (
    (ContextFlags.EXTENDED_FLAGS_PRESENT, EXTENDED),
    (ContextFlags.CARBOHYDRATE_PRESENT, CARBOHYDRATE),
    (ContextFlags.MEAL_PRESENT, MEAL),
    (ContextFlags.TESTER_HEALTH_PRESENT, TESTER_HEALTH),
    (ContextFlags.EXERCISE_PRESENT, EXERCISE),
    (ContextFlags.MEDICATION_PRESENT, MEDICATION),
    (ContextFlags.HBA1C_PRESENT, HBA1C),
)


def _wire(flags: int) -> bytes:
    parts = [f"{flags:02x}", SEQUENCE]
    parts += [field for flag, field in _FIELDS if flags & flag]
    return bytes.fromhex("".join(parts))


FULL = GlucoseMeasurementContext(
    sequence_number=30,
    extended_flags=0,
    carbohydrate_id=CarbohydrateId.BREAKFAST,
    carbohydrate_kg=SFloat(50, -3),
    meal=Meal.BEFORE_MEAL,
    tester=codes.Tester.SELF,
    health=Health.NO_ISSUES,
    exercise_duration_s=3600,
    exercise_intensity_pct=75,
    medication_id=MedicationId.RAPID_ACTING_INSULIN,
    medication=SFloat(5, -3),
    medication_unit=MedicationUnit.LITRES,
    hba1c_pct=SFloat(65, -1),
)


def test_every_field_at_once_decodes_to_the_whole_record() -> None:
    wire = _wire(0xFF)
    assert GlucoseMeasurementContext.from_bytes(wire) == FULL
    assert bytes(FULL) == wire
    assert FULL.carbohydrate_grams == Decimal(50)


@pytest.mark.parametrize("flags", range(256))
def test_every_flag_combination_round_trips(flags: int) -> None:
    wire = _wire(flags)
    record = GlucoseMeasurementContext.from_bytes(wire)
    assert bytes(record) == wire
    assert record.flags == flags
    has = ContextFlags(flags)
    assert record.sequence_number == 30
    assert record.extended_flags == (0 if ContextFlags.EXTENDED_FLAGS_PRESENT in has else None)
    carbohydrate = (FULL.carbohydrate_id, FULL.carbohydrate_kg)
    assert (record.carbohydrate_id, record.carbohydrate_kg) == (
        carbohydrate if ContextFlags.CARBOHYDRATE_PRESENT in has else (None, None)
    )
    assert record.meal == (Meal.BEFORE_MEAL if ContextFlags.MEAL_PRESENT in has else None)
    assert (record.tester, record.health) == (
        (codes.Tester.SELF, Health.NO_ISSUES)
        if ContextFlags.TESTER_HEALTH_PRESENT in has
        else (None, None)
    )
    assert (record.exercise_duration_s, record.exercise_intensity_pct) == (
        (3600, 75) if ContextFlags.EXERCISE_PRESENT in has else (None, None)
    )
    medication = (MedicationId.RAPID_ACTING_INSULIN, SFloat(5, -3))
    assert (record.medication_id, record.medication) == (
        medication if ContextFlags.MEDICATION_PRESENT in has else (None, None)
    )
    expected_unit = (
        MedicationUnit.LITRES
        if ContextFlags.MEDICATION_UNITS_LITRES in has
        else MedicationUnit.KILOGRAMS
    )
    assert record.medication_unit is expected_unit
    assert record.hba1c_pct == (SFloat(65, -1) if ContextFlags.HBA1C_PRESENT in has else None)


@pytest.mark.parametrize("flags", range(256))
def test_every_flag_combination_refuses_short_and_long_payloads(flags: int) -> None:
    wire = _wire(flags)
    assert len(wire) == context_size(ContextFlags(flags))
    for bad in (wire[:-1], wire + b"\xaa"):
        with pytest.raises(LengthError) as caught:
            GlucoseMeasurementContext.from_bytes(bad)
        assert (caught.value.expected, caught.value.got) == (len(wire), len(bad))


def test_empty_payload_is_a_length_error() -> None:
    with pytest.raises(LengthError, match="at least 3 bytes, got 0"):
        GlucoseMeasurementContext.from_bytes(b"")


@pytest.mark.parametrize(
    ("flags", "field_hex", "field", "expected"),
    [
        # An amount whose id is reserved keeps its amount.
        (ContextFlags.CARBOHYDRATE_PRESENT, "00" + "32d0", "carbohydrate_id", None),
        (ContextFlags.CARBOHYDRATE_PRESENT, "08" + "32d0", "carbohydrate_id", None),
        (ContextFlags.MEAL_PRESENT, "00", "meal", None),
        (ContextFlags.MEAL_PRESENT, "06", "meal", None),
        (ContextFlags.TESTER_HEALTH_PRESENT, "50", "tester", None),
        (ContextFlags.TESTER_HEALTH_PRESENT, "54", "tester", None),
        (ContextFlags.TESTER_HEALTH_PRESENT, "01", "health", None),
        (ContextFlags.TESTER_HEALTH_PRESENT, "61", "health", None),
        (ContextFlags.MEDICATION_PRESENT, "06" + "05d0", "medication_id", None),
        (ContextFlags.EXTENDED_FLAGS_PRESENT, "01", "extended_flags", 1),
        (ContextFlags.HBA1C_PRESENT, "0108", "hba1c_pct", SFloat(-2047, 0)),
    ],
)
def test_reserved_values_are_ignored_on_receipt(
    flags: int, field_hex: str, field: str, expected: object
) -> None:
    """Bluetooth receivers ignore reserved values: the field reads as not given (None) and the
    rest of the record, the other half of a pair included, is kept."""
    wire = bytes.fromhex(f"{flags:02x}" + SEQUENCE + field_hex)
    record = GlucoseMeasurementContext.from_bytes(wire)
    assert getattr(record, field) == expected
    assert record.sequence_number == 30
    if field == "carbohydrate_id":
        assert record.carbohydrate_kg == SFloat(50, -3)
    if field in ("tester", "health"):
        other = record.health if field == "tester" else record.tester
        assert other is not None
    if field == "hba1c_pct":
        assert record.hba1c_pct is not None
        assert record.hba1c_pct.special is SFloatSpecial.RESERVED


def test_exercise_intensity_above_100_percent_is_refused() -> None:
    wire = bytes.fromhex("08" + SEQUENCE + "100e" + "65")  # 101 %
    with pytest.raises(OutOfRangeError) as caught:
        GlucoseMeasurementContext.from_bytes(wire)
    assert caught.value.field == "exercise intensity"


def test_exercise_duration_overrun() -> None:
    record = GlucoseMeasurementContext.from_bytes(bytes.fromhex("08" + SEQUENCE + "ffff" + "32"))
    assert record.exercise_overrun
    assert not FULL.exercise_overrun


@pytest.mark.parametrize(
    "fields",
    [
        {"carbohydrate_id": CarbohydrateId.LUNCH},
        {"exercise_duration_s": 60},
        {"exercise_intensity_pct": 60},
        {"medication_id": MedicationId.LONG_ACTING_INSULIN},
    ],
)
def test_construction_refuses_half_a_pair(fields: dict[str, object]) -> None:
    with pytest.raises(InconsistentFieldsError):
        GlucoseMeasurementContext(1, **fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("fields", "wire_hex"),
    [
        ({"carbohydrate_kg": SFloat(5, -2)}, "01" + SEQUENCE + "00" + "05e0"),
        ({"tester": codes.Tester.SELF}, "04" + SEQUENCE + "01"),
        ({"health": Health.NO_ISSUES}, "04" + SEQUENCE + "50"),
        ({"medication": SFloat(1, -3)}, "10" + SEQUENCE + "00" + "01d0"),
    ],
)
def test_an_amount_without_its_id_writes_the_id_as_zero(
    fields: dict[str, object], wire_hex: str
) -> None:
    """What a reserved id decodes to encodes as 0 (never another reserved value), and reads
    back the same."""
    record = GlucoseMeasurementContext(30, **fields)  # type: ignore[arg-type]
    assert bytes(record).hex() == wire_hex
    assert GlucoseMeasurementContext.from_bytes(bytes(record)) == record


def test_construction_takes_plain_ints_for_enums() -> None:
    record = GlucoseMeasurementContext(1, meal=3, tester=2, health=4)  # type: ignore[arg-type]
    assert record.meal is Meal.FASTING
    assert record.tester is codes.Tester.HEALTH_CARE_PROFESSIONAL
    assert record.health is Health.UNDER_STRESS
    with pytest.raises(ReservedValueError):
        GlucoseMeasurementContext(1, meal=9)  # type: ignore[arg-type]


@given(contexts())
def test_encode_decode_identity(record: GlucoseMeasurementContext) -> None:
    wire = bytes(record)
    assert len(wire) == context_size(record.flags)
    assert GlucoseMeasurementContext.from_bytes(wire) == record
