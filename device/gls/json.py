"""JSON-ready dicts of GLS records, for ``glucobridge decode`` and logs.

Shape: snake-case enum names; times ISO 8601 without zone (meter wall clock); absent fields
null; SFLOAT special values as the strings "NaN", "NRes", "+INF", "-INF". Numbers come from
the exact decimal value, so 111e-5 kg/L shows as 0.00111 and 111.0 mg/dL.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from decimal import Decimal
from typing import TypeAlias

from device.gls.concentration import MG_DL_PER_KG_L, MMOL_L_PER_MOL_L, ConcentrationUnit
from device.gls.context import GlucoseMeasurementContext
from device.gls.date_time import DateTime
from device.gls.feature import GlucoseFeature
from device.gls.measurement import GlucoseMeasurement, reserved_fields
from device.gls.racp import (
    RacpNumberOfRecords,
    RacpRequest,
    RacpResponse,
    RacpValue,
    SequenceNumberFilter,
    decode_racp,
)
from device.gls.sfloat import SFloat
from device.gls.wire import snake_name

JsonValue: TypeAlias = bool | int | float | str | list["JsonValue"] | dict[str, "JsonValue"] | None
JsonObject: TypeAlias = dict[str, JsonValue]

# Cross-family conversions (kg/L -> mmol/L, mol/L -> mg/dL) go through the 18.016 factor and
# would print 15 digits of noise; meters show whole mg/dL and 0.1 mmol/L, one more digit is
# kept. Same-family scaling is exact and never rounded.
MG_DL_DECIMALS = 1
MMOL_L_DECIMALS = 2


def sfloat_json(value: SFloat | None, scale: int = 1) -> JsonValue:
    """The number (times ``scale``, exactly) or the special value's string; None stays null."""
    if value is None:
        return None
    if value.special is not None:
        return value.special.value
    exact = value.decimal
    return None if exact is None else float(exact * scale)


def date_time_json(value: DateTime) -> str | None:
    """ISO 8601 without zone, or null when year, month or day is 0 ("not known")."""
    return value.to_datetime().isoformat() if value.is_known else None


def _rounded(value: float | None, decimals: int) -> float | None:
    return None if value is None else round(value, decimals)


def _concentration_json(record: GlucoseMeasurement) -> tuple[JsonValue, JsonValue]:
    """(mg_dl, mmol_l): exact in the unit's own family, rounded across families."""
    value = record.concentration
    if value is None or value.special is not None:
        special = sfloat_json(value)
        return special, special
    if record.unit is ConcentrationUnit.KG_PER_L:
        return sfloat_json(value, MG_DL_PER_KG_L), _rounded(record.mmol_l, MMOL_L_DECIMALS)
    return _rounded(record.mg_dl, MG_DL_DECIMALS), sfloat_json(value, MMOL_L_PER_MOL_L)


def measurement_json(record: GlucoseMeasurement) -> JsonObject:
    known = record.base_time.is_known
    mg_dl, mmol_l = _concentration_json(record)
    status = record.sensor_status
    return {
        "sequence_number": record.sequence_number,
        "base_time": date_time_json(record.base_time),
        "time_offset_minutes": record.time_offset_minutes,
        "user_facing_time": record.user_facing_time().isoformat() if known else None,
        "unit": record.unit.symbol,
        "value": sfloat_json(record.concentration),
        "mg_dl": mg_dl,
        "mmol_l": mmol_l,
        "sample_type": _name(record.sample_type),
        "sample_location": _name(record.sample_location),
        "sensor_status": None if status is None else [snake_name(s) for s in status],
        "context_follows": record.context_follows,
    }


def _name(member: enum.Enum | None) -> str | None:
    """The snake-case name, or null for a field absent or reserved on receipt."""
    return None if member is None else snake_name(member)


def _grams(value: Decimal | None, raw: SFloat) -> JsonValue:
    return float(value) if value is not None else sfloat_json(raw)


def context_json(record: GlucoseMeasurementContext) -> JsonObject:
    carbohydrate: JsonValue = None
    if record.carbohydrate_kg is not None:
        carbohydrate = {
            "id": _name(record.carbohydrate_id),
            "grams": _grams(record.carbohydrate_grams, record.carbohydrate_kg),
        }
    exercise: JsonValue = None
    if record.exercise_duration_s is not None:
        exercise = {
            "duration_s": None if record.exercise_overrun else record.exercise_duration_s,
            "overrun": record.exercise_overrun,
            "intensity_pct": record.exercise_intensity_pct,
        }
    medication: JsonValue = None
    if record.medication is not None:
        medication = {
            "id": _name(record.medication_id),
            "amount": sfloat_json(record.medication),
            "unit": record.medication_unit.symbol,
        }
    return {
        "sequence_number": record.sequence_number,
        "carbohydrate": carbohydrate,
        "meal": _name(record.meal),
        "tester": _name(record.tester),
        "health": _name(record.health),
        "exercise": exercise,
        "medication": medication,
        "hba1c_pct": sfloat_json(record.hba1c_pct),
    }


def feature_json(record: GlucoseFeature) -> JsonObject:
    return {"features": list[JsonValue](record.names)}


def racp_json(value: RacpValue) -> JsonObject:
    if isinstance(value, RacpNumberOfRecords):
        return {
            "op_code": "number_of_stored_records_response",
            "operator": "null",
            "number_of_records": value.count,
        }
    if isinstance(value, RacpResponse):
        op = value.request_op
        return {
            "op_code": "response_code",
            "operator": "null",
            "request_op_code": value.request_op_code if op is None else snake_name(op),
            "response": snake_name(value.response_code),
        }
    return _request_json(value)


def _request_json(value: RacpRequest) -> JsonObject:
    operand: JsonValue = None
    record_filter = value.filter
    if isinstance(record_filter, SequenceNumberFilter):
        operand = {
            "filter_type": snake_name(record_filter.FILTER_TYPE),
            "minimum": record_filter.minimum,
            "maximum": record_filter.maximum,
        }
    elif record_filter is not None:
        low, high = record_filter.minimum, record_filter.maximum
        operand = {
            "filter_type": snake_name(record_filter.FILTER_TYPE),
            "minimum": None if low is None else date_time_json(low),
            "maximum": None if high is None else date_time_json(high),
        }
    return {
        "op_code": snake_name(value.op_code),
        "operator": snake_name(value.operator),
        "operand": operand,
    }


def _measurement(data: bytes) -> JsonObject:
    found = measurement_json(GlucoseMeasurement.from_bytes(data))
    found["reserved_ignored"] = list[JsonValue](reserved_fields(data))
    return found


def _context(data: bytes) -> JsonObject:
    return context_json(GlucoseMeasurementContext.from_bytes(data))


def _feature(data: bytes) -> JsonObject:
    return feature_json(GlucoseFeature.from_bytes(data))


def _racp(data: bytes) -> JsonObject:
    return racp_json(decode_racp(data))


# What ``glucobridge decode KIND HEX`` understands, by characteristic.
DECODERS: dict[str, Callable[[bytes], JsonObject]] = {
    "measurement": _measurement,
    "context": _context,
    "feature": _feature,
    "racp": _racp,
}


def decode_to_json(kind: str, data: bytes) -> JsonObject:
    """Decode ``data`` as characteristic ``kind`` (a key of :data:`DECODERS`) to a JSON dict.

    Raises :class:`~device.gls.errors.GlsError` for bytes that do not decode.
    """
    return DECODERS[kind](data)
