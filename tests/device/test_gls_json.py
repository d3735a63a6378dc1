"""JSON shape of decoded records (what ``glucobridge decode`` prints), whole-object equality."""

from __future__ import annotations

import json

from device.gls import (
    DateTime,
    GlucoseMeasurement,
    GlucoseMeasurementContext,
    SFloat,
    SFloatSpecial,
)
from device.gls.json import JsonObject, context_json, decode_to_json, measurement_json

from .test_gls_context import FULL
from .test_gls_measurement import ACCU_CHEK_GUIDE_SO, CONTOUR_NEXT_ONE, NORDIC_130_SECOND

CONTOUR_JSON: JsonObject = {
    "sequence_number": 30,
    "base_time": "2018-09-20T05:27:07",
    "time_offset_minutes": -420,
    "user_facing_time": "2018-09-19T22:27:07",
    "unit": "kg/L",
    "value": 0.00111,
    "mg_dl": 111.0,
    "mmol_l": 6.16,
    "sample_type": "capillary_whole_blood",
    "sample_location": "not_available",
    "sensor_status": None,
    "context_follows": True,
    "reserved_ignored": [],
}


def _through_json(value: JsonObject) -> object:
    """What a consumer reads back: proves the dict is plain JSON, not just Python."""
    return json.loads(json.dumps(value, allow_nan=False))


def test_contour_next_one() -> None:
    assert _through_json(decode_to_json("measurement", CONTOUR_NEXT_ONE)) == CONTOUR_JSON


def test_mol_per_l_meter_keeps_its_unit_and_converts_with_the_project_factor() -> None:
    assert _through_json(decode_to_json("measurement", NORDIC_130_SECOND)) == {
        "sequence_number": 2,
        "base_time": "2019-08-21T07:27:25",
        "time_offset_minutes": 180,
        "user_facing_time": "2019-08-21T10:27:25",
        "unit": "mol/L",
        "value": 0.008,
        "mg_dl": 144.1,  # 8.0 mmol/L x 18.016
        "mmol_l": 8.0,
        "sample_type": "capillary_whole_blood",
        "sample_location": "not_available",
        "sensor_status": None,
        "context_follows": False,
        "reserved_ignored": [],
    }


def test_sensor_status_lists_names() -> None:
    wire = ACCU_CHEK_GUIDE_SO[:-2] + bytes.fromhex("010a")
    decoded = decode_to_json("measurement", wire)
    assert decoded["sensor_status"] == ["battery_low", "read_interrupted", "time_fault"]
    assert decode_to_json("measurement", ACCU_CHEK_GUIDE_SO)["sensor_status"] == []


def test_special_values_render_as_strings() -> None:
    for special in SFloatSpecial:
        record = GlucoseMeasurement.from_bytes(CONTOUR_NEXT_ONE)
        wire = bytes(record)[:-3] + bytes(SFloat.special_value(special)) + bytes([0xF1])
        decoded = _through_json(decode_to_json("measurement", wire))
        assert isinstance(decoded, dict)
        assert (decoded["value"], decoded["mg_dl"], decoded["mmol_l"]) == (special.value,) * 3


def test_absent_concentration_and_unknown_time_are_null() -> None:
    record = GlucoseMeasurement(7, DateTime(0, 5, 1, 8, 0, 0))
    assert _through_json(measurement_json(record)) == {
        "sequence_number": 7,
        "base_time": None,
        "time_offset_minutes": None,
        "user_facing_time": None,
        "unit": "kg/L",
        "value": None,
        "mg_dl": None,
        "mmol_l": None,
        "sample_type": None,
        "sample_location": None,
        "sensor_status": None,
        "context_follows": False,
    }


def test_full_context() -> None:
    assert _through_json(context_json(FULL)) == {
        "sequence_number": 30,
        "carbohydrate": {"id": "breakfast", "grams": 50.0},
        "meal": "before_meal",
        "tester": "self",
        "health": "no_issues",
        "exercise": {"duration_s": 3600, "overrun": False, "intensity_pct": 75},
        "medication": {"id": "rapid_acting_insulin", "amount": 0.005, "unit": "L"},
        "hba1c_pct": 6.5,
    }


def test_bare_context_and_specials() -> None:
    assert _through_json(context_json(GlucoseMeasurementContext(3))) == {
        "sequence_number": 3,
        "carbohydrate": None,
        "meal": None,
        "tester": None,
        "health": None,
        "exercise": None,
        "medication": None,
        "hba1c_pct": None,
    }
    wire = bytes.fromhex("49" + "0300" + "04" + "0008" + "ffff32" + "ff07")
    decoded = decode_to_json("context", wire)
    assert decoded["carbohydrate"] == {"id": "snack", "grams": "NRes"}
    assert decoded["exercise"] == {"duration_s": None, "overrun": True, "intensity_pct": 50}
    assert decoded["hba1c_pct"] == "NaN"


def test_feature() -> None:
    assert decode_to_json("feature", bytes.fromhex("0102")) == {
        "features": ["low_battery_detection", "time_fault"]
    }


def test_racp_values() -> None:
    assert decode_to_json("racp", bytes.fromhex("0103011e00")) == {
        "op_code": "report_stored_records",
        "operator": "greater_than_or_equal_to",
        "operand": {"filter_type": "sequence_number", "minimum": 30, "maximum": None},
    }
    assert decode_to_json("racp", bytes.fromhex("010202e807031f173b3b")) == {
        "op_code": "report_stored_records",
        "operator": "less_than_or_equal_to",
        "operand": {
            "filter_type": "user_facing_time",
            "minimum": None,
            "maximum": "2024-03-31T23:59:59",
        },
    }
    assert decode_to_json("racp", bytes.fromhex("0101")) == {
        "op_code": "report_stored_records",
        "operator": "all_records",
        "operand": None,
    }
    assert decode_to_json("racp", bytes.fromhex("06000406")) == {
        "op_code": "response_code",
        "operator": "null",
        "request_op_code": "report_number_of_stored_records",
        "response": "no_records_found",
    }
    assert decode_to_json("racp", bytes.fromhex("05000f00")) == {
        "op_code": "number_of_stored_records_response",
        "operator": "null",
        "number_of_records": 15,
    }
