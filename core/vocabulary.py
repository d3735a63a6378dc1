"""One vocabulary for what a reading says about itself, shared by the GLS codec mapping, the
wire schema, ingest, metrics, alerts, pages and exports.

The spellings are the Glucose Profile's assigned names in snake case (GLS 1.0.1, section
3.106 of the GATT Specification Supplement); a reading from another source (a CGM app, a
file, a FHIR client) uses the same words. Whether a reading is a control-solution test is
decided once, here (`is_control`), and stored as a boolean every query uses.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal


class SourceKind(StrEnum):
    """What kind of device measured a reading; clinical reports are per source."""

    CGM = "cgm"  # a continuous sensor: a reading every 1-15 minutes
    METER = "meter"  # a fingerstick glucometer: a handful a day
    LAB = "lab"  # a laboratory result sent by another system


class SampleType(StrEnum):
    """GLS Type (low nibble of the Type-Sample Location byte)."""

    CAPILLARY_WHOLE_BLOOD = "capillary_whole_blood"
    CAPILLARY_PLASMA = "capillary_plasma"
    VENOUS_WHOLE_BLOOD = "venous_whole_blood"
    VENOUS_PLASMA = "venous_plasma"
    ARTERIAL_WHOLE_BLOOD = "arterial_whole_blood"
    ARTERIAL_PLASMA = "arterial_plasma"
    UNDETERMINED_WHOLE_BLOOD = "undetermined_whole_blood"
    UNDETERMINED_PLASMA = "undetermined_plasma"
    INTERSTITIAL_FLUID = "interstitial_fluid"
    CONTROL_SOLUTION = "control_solution"


class SampleLocation(StrEnum):
    """GLS Sample Location (high nibble of the Type-Sample Location byte)."""

    FINGER = "finger"
    ALTERNATE_SITE = "alternate_site"
    EARLOBE = "earlobe"
    CONTROL_SOLUTION = "control_solution"
    NOT_AVAILABLE = "not_available"


class SensorStatus(StrEnum):
    """GLS Sensor Status Annunciation bits that a meter raised at measurement time."""

    BATTERY_LOW = "battery_low"
    SENSOR_MALFUNCTION = "sensor_malfunction"
    SAMPLE_SIZE_INSUFFICIENT = "sample_size_insufficient"
    STRIP_INSERTION_ERROR = "strip_insertion_error"
    STRIP_TYPE_INCORRECT = "strip_type_incorrect"
    RESULT_TOO_HIGH = "result_too_high"  # above what the meter can measure: "HI"
    RESULT_TOO_LOW = "result_too_low"  # below what the meter can measure: "LO"
    TEMPERATURE_TOO_HIGH = "temperature_too_high"
    TEMPERATURE_TOO_LOW = "temperature_too_low"
    READ_INTERRUPTED = "read_interrupted"
    GENERAL_DEVICE_FAULT = "general_device_fault"
    TIME_FAULT = "time_fault"


class MealTag(StrEnum):
    """GLS Context Meal: when the reading was taken relative to food."""

    BEFORE_MEAL = "before_meal"
    AFTER_MEAL = "after_meal"
    FASTING = "fasting"
    CASUAL = "casual"  # snacks, drinks
    BEDTIME = "bedtime"


class CarbohydrateMeal(StrEnum):
    """GLS Context Carbohydrate ID: the meal a carbohydrate amount belongs to."""

    BREAKFAST = "breakfast"
    LUNCH = "lunch"
    DINNER = "dinner"
    SNACK = "snack"
    DRINK = "drink"
    SUPPER = "supper"
    BRUNCH = "brunch"


class Tester(StrEnum):
    """GLS Context Tester: who took the sample."""

    SELF = "self"
    HEALTH_CARE_PROFESSIONAL = "health_care_professional"
    LAB_TEST = "lab_test"
    NOT_AVAILABLE = "not_available"


class Health(StrEnum):
    """GLS Context Health: how the patient was at the time."""

    MINOR_ISSUES = "minor_issues"
    MAJOR_ISSUES = "major_issues"
    DURING_MENSES = "during_menses"
    UNDER_STRESS = "under_stress"
    NO_ISSUES = "no_issues"
    NOT_AVAILABLE = "not_available"


class RangeFlag(StrEnum):
    """A result outside the meter's measuring range ("HI" / "LO" on its display). The
    reading's value is then the meter's limit, and it counts in very high / very low."""

    ABOVE_RANGE = "above_range"
    BELOW_RANGE = "below_range"

    @property
    def shown_as(self) -> Literal["HI", "LO"]:
        """What the meter showed instead of a number; every page and export shows the same."""
        return "HI" if self is RangeFlag.ABOVE_RANGE else "LO"


class HeldReason(StrEnum):
    """Why a device record could not become a reading; it is kept with its raw bytes."""

    UNKNOWN_BASE_TIME = "unknown_base_time"  # the meter's clock was never set
    INVALID_TIME = "invalid_time"  # a field out of range (month 13) with no known correction
    NO_VALUE = "no_value"  # NaN, NRes, or no concentration field
    MALFORMED = "malformed"  # a length that does not fit its flags, an unreadable record
    CONTEXT_WITHOUT_MEASUREMENT = "context_without_measurement"


def is_control(sample_type: SampleType | None, location: SampleLocation | None) -> bool:
    """A control-solution test: GLS marks it by type 10 or by location 4; meters use
    either. Decided here once; it is stored and never counted as a patient reading."""
    return sample_type is SampleType.CONTROL_SOLUTION or location is SampleLocation.CONTROL_SOLUTION


def source_of(sample_type: SampleType | None) -> SourceKind:
    """The source kind a reading's sample type implies when the device did not say: a
    continuous sensor measures interstitial fluid; anything else is a meter's blood sample."""
    return SourceKind.CGM if sample_type is SampleType.INTERSTITIAL_FLUID else SourceKind.METER
