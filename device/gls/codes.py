"""Assigned numbers of the Glucose Profile: the enumerations its records carry.

Values not listed here are "reserved for future use" in the specification; decoding one
raises :class:`~device.gls.errors.ReservedValueError` (see :func:`device.gls.wire.lookup`).
"""

from __future__ import annotations

import enum


class SampleType(enum.IntEnum):
    """Glucose Measurement type (low nibble of the Type-Sample Location byte)."""

    CAPILLARY_WHOLE_BLOOD = 1
    CAPILLARY_PLASMA = 2
    VENOUS_WHOLE_BLOOD = 3
    VENOUS_PLASMA = 4
    ARTERIAL_WHOLE_BLOOD = 5
    ARTERIAL_PLASMA = 6
    UNDETERMINED_WHOLE_BLOOD = 7
    UNDETERMINED_PLASMA = 8
    INTERSTITIAL_FLUID = 9
    CONTROL_SOLUTION = 10  # stored but never counted as a patient reading (DESIGN.md)


class SampleLocation(enum.IntEnum):
    """Glucose Measurement sample location (high nibble of the Type-Sample Location byte)."""

    FINGER = 1
    ALTERNATE_SITE = 2
    EARLOBE = 3
    CONTROL_SOLUTION = 4
    NOT_AVAILABLE = 15


class CarbohydrateId(enum.IntEnum):
    """Measurement Context carbohydrate ID: which meal the carbohydrate amount belongs to."""

    BREAKFAST = 1
    LUNCH = 2
    DINNER = 3
    SNACK = 4
    DRINK = 5
    SUPPER = 6
    BRUNCH = 7


class Meal(enum.IntEnum):
    """Measurement Context meal: when the reading was taken relative to food."""

    BEFORE_MEAL = 1
    AFTER_MEAL = 2
    FASTING = 3
    CASUAL = 4  # snacks, drinks, etc.
    BEDTIME = 5


class Tester(enum.IntEnum):
    """Measurement Context tester (low nibble of the Tester-Health byte)."""

    SELF = 1
    HEALTH_CARE_PROFESSIONAL = 2
    LAB_TEST = 3
    NOT_AVAILABLE = 15


class Health(enum.IntEnum):
    """Measurement Context health (high nibble of the Tester-Health byte)."""

    MINOR_ISSUES = 1
    MAJOR_ISSUES = 2
    DURING_MENSES = 3
    UNDER_STRESS = 4
    NO_ISSUES = 5
    NOT_AVAILABLE = 15


class MedicationId(enum.IntEnum):
    """Measurement Context medication ID."""

    RAPID_ACTING_INSULIN = 1
    SHORT_ACTING_INSULIN = 2
    INTERMEDIATE_ACTING_INSULIN = 3
    LONG_ACTING_INSULIN = 4
    PREMIXED_INSULIN = 5


class MedicationUnit(enum.IntEnum):
    """Measurement Context flags bit 5: the unit the medication amount is sent in."""

    KILOGRAMS = 0
    LITRES = 1

    @property
    def symbol(self) -> str:
        return "kg" if self is MedicationUnit.KILOGRAMS else "L"
