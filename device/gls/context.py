"""Glucose Measurement Context characteristic (0x2A34): what surrounded a reading.

Layout (little-endian)::

    flags u8
    sequence number u16                              (of the measurement it belongs to)
    [extended flags u8]                              flags bit 7 (every bit reserved)
    [carbohydrate ID u8 + carbohydrate SFLOAT kg]    flags bit 0
    [meal u8]                                        flags bit 1
    [tester-health u8: tester low nibble, health high nibble]  flags bit 2
    [exercise duration u16 s + intensity u8 %]       flags bit 3 (0xFFFF: overrun)
    [medication ID u8 + medication SFLOAT]           flags bit 4 (bit 5: 0 kg, 1 L)
    [HbA1c SFLOAT %]                                 flags bit 6

Receiving, a reserved value (a meal, tester, health, carbohydrate or medication id the
specification does not define, extended flags bits) is ignored: the field reads as None and
the rest of the record is kept, as Bluetooth specifications require of receivers. An amount
whose id is reserved keeps its amount. Encoding never produces a reserved value (an id not
given beside its amount is written as 0).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from decimal import Decimal
from typing import ClassVar

from device.gls import uuids
from device.gls.codes import CarbohydrateId, Health, Meal, MedicationId, MedicationUnit, Tester
from device.gls.errors import InconsistentFieldsError, LengthError
from device.gls.sfloat import SFloat
from device.gls.wire import (
    UINT8_MAX,
    UINT16_MAX,
    E,
    Reader,
    check_range,
    lookup,
    require_length,
    u8,
    u16,
)

CONTEXT_UUID = uuids.CONTEXT
# Exercise duration 0xFFFF means the exercise lasted longer than the field can count.
EXERCISE_DURATION_OVERRUN = 0xFFFF
EXERCISE_INTENSITY_MAX_PCT = 100  # a percentage of maximum effort
GRAMS_PER_KG = 1_000
_NIBBLE = 4
_NIBBLE_MASK = 0x0F
# An id, tester or health not given beside what it travels with is written as this value.
_NOT_GIVEN = 0


class ContextFlags(enum.IntFlag):
    """Glucose Measurement Context flags (all eight bits are defined)."""

    CARBOHYDRATE_PRESENT = 0x01
    MEAL_PRESENT = 0x02
    TESTER_HEALTH_PRESENT = 0x04
    EXERCISE_PRESENT = 0x08
    MEDICATION_PRESENT = 0x10
    MEDICATION_UNITS_LITRES = 0x20  # clear: kilograms
    HBA1C_PRESENT = 0x40
    EXTENDED_FLAGS_PRESENT = 0x80


CONTEXT_MIN_SIZE = 1 + 2  # flags and sequence number
_FIELD_SIZES: tuple[tuple[ContextFlags, int], ...] = (
    (ContextFlags.EXTENDED_FLAGS_PRESENT, 1),
    (ContextFlags.CARBOHYDRATE_PRESENT, 1 + SFloat.SIZE),
    (ContextFlags.MEAL_PRESENT, 1),
    (ContextFlags.TESTER_HEALTH_PRESENT, 1),
    (ContextFlags.EXERCISE_PRESENT, 2 + 1),
    (ContextFlags.MEDICATION_PRESENT, 1 + SFloat.SIZE),
    (ContextFlags.HBA1C_PRESENT, SFloat.SIZE),
)


def context_size(flags: ContextFlags) -> int:
    """The exact length of a Measurement Context carrying ``flags``."""
    return CONTEXT_MIN_SIZE + sum(size for flag, size in _FIELD_SIZES if flag in flags)


def _known(enum_type: type[E], value: int) -> E | None:
    """The member for a received value, or None for one the specification reserves."""
    try:
        return enum_type(value)
    except ValueError:
        return None


def _with_amount(names: tuple[str, str], kind: object, amount: object) -> None:
    """An id (carbohydrate, medication) needs its amount; an amount whose id was reserved on
    receipt stands alone."""
    if kind is not None and amount is None:
        raise InconsistentFieldsError(names, "an id needs its amount (one flag bit)")


def _together(names: tuple[str, ...], *values: object) -> None:
    if any(v is None for v in values) and any(v is not None for v in values):
        raise InconsistentFieldsError(names, "present together or not at all (one flag bit)")


def _sfloat(value: SFloat | None, name: str) -> None:
    if value is not None and not isinstance(value, SFloat):
        raise TypeError(f"{name} must be an SFloat")


@dataclass(frozen=True, slots=True)
class GlucoseMeasurementContext:
    """One Measurement Context record; absent optional fields are None.

    Pairs sent under one flag bit (carbohydrate ID and amount, tester and health, exercise
    duration and intensity, medication ID and amount) are both set or both None.
    ``medication_unit`` is kept even without a medication, as flags bit 5 is on the wire.
    ``extended_flags`` is None when absent; every bit of it is reserved (kept as received,
    meaning nothing). An amount may stand without its id (the id was reserved on receipt),
    and tester or health may be None beside the other.
    """

    UUID: ClassVar[int] = CONTEXT_UUID

    sequence_number: int
    extended_flags: int | None = None
    carbohydrate_id: CarbohydrateId | None = None
    carbohydrate_kg: SFloat | None = None
    meal: Meal | None = None
    tester: Tester | None = None
    health: Health | None = None
    exercise_duration_s: int | None = None
    exercise_intensity_pct: int | None = None
    medication_id: MedicationId | None = None
    medication: SFloat | None = None
    medication_unit: MedicationUnit = MedicationUnit.KILOGRAMS
    hba1c_pct: SFloat | None = None

    def __post_init__(self) -> None:
        check_range("sequence number", self.sequence_number, 0, UINT16_MAX)
        if self.extended_flags is not None:
            check_range("extended flags", self.extended_flags, 0, UINT8_MAX)
        _with_amount(
            ("carbohydrate id", "carbohydrate"), self.carbohydrate_id, self.carbohydrate_kg
        )
        _together(
            ("exercise duration", "exercise intensity"),
            self.exercise_duration_s,
            self.exercise_intensity_pct,
        )
        _with_amount(("medication id", "medication"), self.medication_id, self.medication)
        for name, value in (
            ("carbohydrate", self.carbohydrate_kg),
            ("medication", self.medication),
            ("HbA1c", self.hba1c_pct),
        ):
            _sfloat(value, name)
        if self.exercise_duration_s is not None:
            check_range("exercise duration", self.exercise_duration_s, 0, UINT16_MAX)
        if self.exercise_intensity_pct is not None:
            check_range(
                "exercise intensity", self.exercise_intensity_pct, 0, EXERCISE_INTENSITY_MAX_PCT
            )
        self._coerce("carbohydrate_id", CarbohydrateId)
        self._coerce("meal", Meal)
        self._coerce("tester", Tester)
        self._coerce("health", Health)
        self._coerce("medication_id", MedicationId)
        self._coerce("medication_unit", MedicationUnit)

    def _coerce(self, name: str, enum_type: type[enum.IntEnum]) -> None:
        """Replace a plain int with its enum member; an undefined value is reserved."""
        value = getattr(self, name)
        if value is not None:
            object.__setattr__(self, name, lookup(enum_type, value, name.replace("_", " ")))

    # -- wire --------------------------------------------------------------------------

    @classmethod
    def from_bytes(cls, data: bytes) -> GlucoseMeasurementContext:
        if not data:
            raise LengthError(CONTEXT_MIN_SIZE, 0, "context fields", at_least=True)
        flags = ContextFlags(data[0])
        require_length(data, context_size(flags), "flags")
        reader = Reader(data[1:])
        sequence_number = reader.u16()
        extended = reader.u8() if ContextFlags.EXTENDED_FLAGS_PRESENT in flags else None
        carb_id = carb = meal = tester = health = None
        duration = intensity = med_id = medication = hba1c = None
        if ContextFlags.CARBOHYDRATE_PRESENT in flags:
            carb_id = _known(CarbohydrateId, reader.u8())
            carb = SFloat.from_raw(reader.u16())
        if ContextFlags.MEAL_PRESENT in flags:
            meal = _known(Meal, reader.u8())
        if ContextFlags.TESTER_HEALTH_PRESENT in flags:
            tester_health = reader.u8()
            tester = _known(Tester, tester_health & _NIBBLE_MASK)
            health = _known(Health, tester_health >> _NIBBLE)
        if ContextFlags.EXERCISE_PRESENT in flags:
            duration = reader.u16()
            intensity = reader.u8()
        if ContextFlags.MEDICATION_PRESENT in flags:
            med_id = _known(MedicationId, reader.u8())
            medication = SFloat.from_raw(reader.u16())
        if ContextFlags.HBA1C_PRESENT in flags:
            hba1c = SFloat.from_raw(reader.u16())
        return cls(
            sequence_number=sequence_number,
            extended_flags=extended,
            carbohydrate_id=carb_id,
            carbohydrate_kg=carb,
            meal=meal,
            tester=tester,
            health=health,
            exercise_duration_s=duration,
            exercise_intensity_pct=intensity,
            medication_id=med_id,
            medication=medication,
            medication_unit=(
                MedicationUnit.LITRES
                if ContextFlags.MEDICATION_UNITS_LITRES in flags
                else MedicationUnit.KILOGRAMS
            ),
            hba1c_pct=hba1c,
        )

    @property
    def flags(self) -> ContextFlags:
        present = (
            (ContextFlags.CARBOHYDRATE_PRESENT, self.carbohydrate_kg),
            (ContextFlags.MEAL_PRESENT, self.meal),
            (ContextFlags.TESTER_HEALTH_PRESENT, self.tester or self.health),
            (ContextFlags.EXERCISE_PRESENT, self.exercise_duration_s),
            (ContextFlags.MEDICATION_PRESENT, self.medication),
            (ContextFlags.HBA1C_PRESENT, self.hba1c_pct),
            (ContextFlags.EXTENDED_FLAGS_PRESENT, self.extended_flags),
        )
        flags = ContextFlags(0)
        for flag, value in present:
            if value is not None:
                flags |= flag
        if self.medication_unit is MedicationUnit.LITRES:
            flags |= ContextFlags.MEDICATION_UNITS_LITRES
        return flags

    def __bytes__(self) -> bytes:
        out = u8(self.flags) + u16(self.sequence_number)
        # __post_init__ keeps each pair together; testing both halves is for the type checker.
        if self.extended_flags is not None:
            out += u8(self.extended_flags)
        if self.carbohydrate_kg is not None:
            carb_id = _NOT_GIVEN if self.carbohydrate_id is None else int(self.carbohydrate_id)
            out += u8(carb_id) + bytes(self.carbohydrate_kg)
        if self.meal is not None:
            out += u8(self.meal)
        if self.tester is not None or self.health is not None:
            tester = _NOT_GIVEN if self.tester is None else int(self.tester)
            health = _NOT_GIVEN if self.health is None else int(self.health)
            out += u8(health << _NIBBLE | tester)
        if self.exercise_duration_s is not None and self.exercise_intensity_pct is not None:
            out += u16(self.exercise_duration_s) + u8(self.exercise_intensity_pct)
        if self.medication is not None:
            med_id = _NOT_GIVEN if self.medication_id is None else int(self.medication_id)
            out += u8(med_id) + bytes(self.medication)
        if self.hba1c_pct is not None:
            out += bytes(self.hba1c_pct)
        return out

    # -- meaning -----------------------------------------------------------------------

    @property
    def carbohydrate_grams(self) -> Decimal | None:
        """The carbohydrate amount in grams; None when absent or a special value."""
        if self.carbohydrate_kg is None or self.carbohydrate_kg.decimal is None:
            return None
        return self.carbohydrate_kg.decimal * GRAMS_PER_KG

    @property
    def exercise_overrun(self) -> bool:
        """True when the exercise outlasted what the duration field can count."""
        return self.exercise_duration_s == EXERCISE_DURATION_OVERRUN
