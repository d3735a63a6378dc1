"""Glucose Measurement (0x2A18): real captures, every flag combination, errors, properties.

Golden captures (whole-object equality), each from a real meter as published:
* Contour Next One: ``131e00e2070914051b075cfe6fb0f1`` (the project's reference record).
* A mol/L meter logged by nRF's BleManager in nordicsemi/Android-BLE-Library issue 130
  (https://github.com/nordicsemi/Android-BLE-Library/issues/130):
  ``07-01-00-E3-07-08-15-06-1F-0D-B4-00-3B-C0-F1`` and
  ``07-02-00-E3-07-08-15-07-1B-19-B4-00-50-C0-F1``; the log itself decodes the second as
  "21 Aug 2019, 07:27:25, offset 180 min, 0.008 mol/l".
* A meter notification quoted in dotintent/react-native-ble-plx issue 652
  (https://github.com/dotintent/react-native-ble-plx/issues/652, a thread about Accu-Chek
  meters), base64 ``AwYA5AcEDRAmCgAAeLDx``, reported there as a reading of 120 (mg/dL).
* An Accu-Chek Guide notification in Stack Overflow question 63340809 ("How to decode
  response from Glucose Measurement Characteristic"), posted as the UTF-8 bytes of a binary
  string; undoing that (195 164 -> 0xE4, 194 176 -> 0xB0, 195 184 -> 0xF8) gives
  ``1b0400e407070e0b06055a0277b0f80000``.
"""

from __future__ import annotations

import base64
import datetime as dt

import pytest
from hypothesis import given

from device.gls import (
    ConcentrationUnit,
    DateTime,
    GlucoseMeasurement,
    InconsistentFieldsError,
    LengthError,
    MeasurementFlags,
    OutOfRangeError,
    SampleLocation,
    SampleType,
    SensorStatus,
    SFloat,
    UnknownDateTimeError,
    kg_per_l_from_mg_dl,
    mol_per_l_from_mmol_l,
)
from device.gls.measurement import measurement_size, reserved_fields, sequence_number_of

from .test_gls_strategies import measurements

CONTOUR_NEXT_ONE = bytes.fromhex("131e00e2070914051b075cfe6fb0f1")
NORDIC_130_FIRST = bytes.fromhex("070100E3070815061F0DB4003BC0F1")
NORDIC_130_SECOND = bytes.fromhex("070200E3070815071B19B40050C0F1")
BLE_PLX_652 = base64.b64decode("AwYA5AcEDRAmCgAAeLDx")
ACCU_CHEK_GUIDE_SO = bytes.fromhex("1b0400e407070e0b06055a0277b0f80000")

GOLDEN = [
    (
        CONTOUR_NEXT_ONE,
        GlucoseMeasurement(
            sequence_number=30,
            base_time=DateTime(2018, 9, 20, 5, 27, 7),
            time_offset_minutes=-420,
            concentration=SFloat(111, -5),
            unit=ConcentrationUnit.KG_PER_L,
            sample_type=SampleType.CAPILLARY_WHOLE_BLOOD,
            sample_location=SampleLocation.NOT_AVAILABLE,
            sensor_status=None,
            context_follows=True,
        ),
    ),
    (
        NORDIC_130_FIRST,
        GlucoseMeasurement(
            sequence_number=1,
            base_time=DateTime(2019, 8, 21, 6, 31, 13),
            time_offset_minutes=180,
            concentration=SFloat(59, -4),
            unit=ConcentrationUnit.MOL_PER_L,
            sample_type=SampleType.CAPILLARY_WHOLE_BLOOD,
            sample_location=SampleLocation.NOT_AVAILABLE,
        ),
    ),
    (
        NORDIC_130_SECOND,
        GlucoseMeasurement(
            sequence_number=2,
            base_time=DateTime(2019, 8, 21, 7, 27, 25),
            time_offset_minutes=180,
            concentration=SFloat(80, -4),
            unit=ConcentrationUnit.MOL_PER_L,
            sample_type=SampleType.CAPILLARY_WHOLE_BLOOD,
            sample_location=SampleLocation.NOT_AVAILABLE,
        ),
    ),
    (
        BLE_PLX_652,
        GlucoseMeasurement(
            sequence_number=6,
            base_time=DateTime(2020, 4, 13, 16, 38, 10),
            time_offset_minutes=0,
            concentration=SFloat(120, -5),
            unit=ConcentrationUnit.KG_PER_L,
            sample_type=SampleType.CAPILLARY_WHOLE_BLOOD,
            sample_location=SampleLocation.NOT_AVAILABLE,
        ),
    ),
    (
        ACCU_CHEK_GUIDE_SO,
        GlucoseMeasurement(
            sequence_number=4,
            base_time=DateTime(2020, 7, 14, 11, 6, 5),
            time_offset_minutes=602,
            concentration=SFloat(119, -5),
            unit=ConcentrationUnit.KG_PER_L,
            sample_type=SampleType.UNDETERMINED_PLASMA,
            sample_location=SampleLocation.NOT_AVAILABLE,
            sensor_status=SensorStatus(0),
            context_follows=True,
        ),
    ),
]


@pytest.mark.parametrize(("wire", "expected"), GOLDEN)
def test_golden_captures_decode_to_the_whole_expected_record(
    wire: bytes, expected: GlucoseMeasurement
) -> None:
    assert GlucoseMeasurement.from_bytes(wire) == expected
    assert bytes(expected) == wire


def test_contour_next_one_reads_as_the_meter_showed_it() -> None:
    record = GlucoseMeasurement.from_bytes(CONTOUR_NEXT_ONE)
    assert record.mg_dl == 111.0
    assert record.mmol_l == pytest.approx(111 / 18.016)
    assert record.user_facing_time() == dt.datetime(2018, 9, 19, 22, 27, 7)


def test_mol_per_l_reading_converts_with_the_project_factor() -> None:
    record = GlucoseMeasurement.from_bytes(NORDIC_130_SECOND)
    assert record.mmol_l == 8.0
    assert record.mg_dl == pytest.approx(144.128)


def test_the_simulator_helpers_produce_what_meters_send() -> None:
    assert kg_per_l_from_mg_dl(111) == SFloat(111, -5)
    assert mol_per_l_from_mmol_l(8.0) == SFloat(80, -4)
    assert mol_per_l_from_mmol_l("5.9") == SFloat(59, -4)


# -- every flag combination ----------------------------------------------------------------

SEQUENCE = "2a00"  # 42
BASE_TIME = "e2070914051b07"
OFFSET = "5cfe"  # -420 minutes
CONCENTRATION = "6fb0" + "21"  # 111e-5; alternate site (2, high nibble), capillary blood (1)
STATUS = "2100"  # battery low + result too high


def _wire(flags: int) -> bytes:
    parts = [f"{flags:02x}", SEQUENCE, BASE_TIME]
    if flags & MeasurementFlags.TIME_OFFSET_PRESENT:
        parts.append(OFFSET)
    if flags & MeasurementFlags.CONCENTRATION_PRESENT:
        parts.append(CONCENTRATION)
    if flags & MeasurementFlags.SENSOR_STATUS_PRESENT:
        parts.append(STATUS)
    return bytes.fromhex("".join(parts))


@pytest.mark.parametrize("flags", range(32))
def test_every_flag_combination_round_trips(flags: int) -> None:
    wire = _wire(flags)
    record = GlucoseMeasurement.from_bytes(wire)
    assert bytes(record) == wire
    assert record.flags == flags
    assert record.sequence_number == 42
    assert record.base_time == DateTime(2018, 9, 20, 5, 27, 7)
    has = MeasurementFlags(flags)
    assert record.time_offset_minutes == (
        -420 if MeasurementFlags.TIME_OFFSET_PRESENT in has else None
    )
    if MeasurementFlags.CONCENTRATION_PRESENT in has:
        assert record.concentration == SFloat(111, -5)
        assert record.sample_type is SampleType.CAPILLARY_WHOLE_BLOOD
        assert record.sample_location is SampleLocation.ALTERNATE_SITE
    else:
        assert (record.concentration, record.sample_type, record.sample_location) == (None,) * 3
        assert record.mg_dl is None
    expected_unit = (
        ConcentrationUnit.MOL_PER_L
        if MeasurementFlags.UNITS_MOL_PER_L in has
        else ConcentrationUnit.KG_PER_L
    )
    assert record.unit is expected_unit
    if MeasurementFlags.SENSOR_STATUS_PRESENT in has:
        assert record.sensor_status == SensorStatus.BATTERY_LOW | SensorStatus.RESULT_TOO_HIGH
    else:
        assert record.sensor_status is None
    assert record.context_follows is (MeasurementFlags.CONTEXT_FOLLOWS in has)


@pytest.mark.parametrize("flags", range(32))
def test_every_flag_combination_refuses_one_byte_short_and_one_byte_long(flags: int) -> None:
    wire = _wire(flags)
    for bad in (wire[:-1], wire + b"\x00"):
        with pytest.raises(LengthError) as caught:
            GlucoseMeasurement.from_bytes(bad)
        assert (caught.value.expected, caught.value.got) == (len(wire), len(bad))
        assert caught.value.what == "flags"


def test_length_message_names_what_was_expected() -> None:
    with pytest.raises(LengthError, match=r"^flags need 17 bytes, got 15$"):
        GlucoseMeasurement.from_bytes(ACCU_CHEK_GUIDE_SO[:15])


def test_empty_payload_is_a_length_error() -> None:
    with pytest.raises(LengthError) as caught:
        GlucoseMeasurement.from_bytes(b"")
    assert caught.value.at_least and caught.value.expected == 10


# Receivers ignore reserved values (Core Specification, Vol 1, Part E, "Reserved for Future
# Use"; GLS 1.0.1 marks these bits and values RFU): the record decodes, its meaning unchanged
# by what is reserved, and reserved_fields() names what was ignored.


@pytest.mark.parametrize("reserved_bit", [0x20, 0x40, 0x80])
def test_reserved_flag_bits_are_ignored_on_receipt(reserved_bit: int) -> None:
    wire = bytes([0x13 | reserved_bit]) + CONTOUR_NEXT_ONE[1:]
    assert GlucoseMeasurement.from_bytes(wire) == GOLDEN[0][1]
    assert reserved_fields(wire) == [f"flags bits 0x{reserved_bit:02x}"]


@pytest.mark.parametrize(
    ("type_location", "sample_type", "location", "ignored"),
    [
        (0xF0, None, SampleLocation.NOT_AVAILABLE, "sample type 0"),
        (0xFB, None, SampleLocation.NOT_AVAILABLE, "sample type 11"),
        (0x01, SampleType.CAPILLARY_WHOLE_BLOOD, None, "sample location 0"),
        (0x51, SampleType.CAPILLARY_WHOLE_BLOOD, None, "sample location 5"),
    ],
)
def test_a_reserved_sample_type_or_location_reads_as_not_given_and_the_value_is_kept(
    type_location: int,
    sample_type: SampleType | None,
    location: SampleLocation | None,
    ignored: str,
) -> None:
    wire = CONTOUR_NEXT_ONE[:-1] + bytes([type_location])
    record = GlucoseMeasurement.from_bytes(wire)
    assert (record.sample_type, record.sample_location) == (sample_type, location)
    assert record.mg_dl == 111.0  # the concentration it travels with stays
    assert reserved_fields(wire) == [ignored]


def test_reserved_sensor_status_bits_are_ignored_on_receipt() -> None:
    wire = ACCU_CHEK_GUIDE_SO[:-2] + bytes.fromhex("2010")  # bit 5 (too high) and bit 12 (RFU)
    assert GlucoseMeasurement.from_bytes(wire).sensor_status == SensorStatus.RESULT_TOO_HIGH
    assert reserved_fields(wire) == ["sensor status bits 0x1000"]


def test_a_record_without_reserved_values_names_none() -> None:
    assert all(reserved_fields(wire) == [] for wire, _ in GOLDEN)
    assert reserved_fields(b"") == []


def test_not_given_type_and_location_encode_as_zero_never_as_another_reserved_value() -> None:
    record = GlucoseMeasurement(1, DateTime(2024, 1, 1), concentration=SFloat(95, -5))
    assert bytes(record)[-1] == 0x00
    assert GlucoseMeasurement.from_bytes(bytes(record)) == record


def test_sensor_status_bits_decode_by_name() -> None:
    wire = ACCU_CHEK_GUIDE_SO[:-2] + bytes.fromhex("010a")  # bits 0, 9, 11
    status = GlucoseMeasurement.from_bytes(wire).sensor_status
    assert (
        status == SensorStatus.BATTERY_LOW | SensorStatus.READ_INTERRUPTED | SensorStatus.TIME_FAULT
    )


def test_control_solution_type_and_location_decode() -> None:
    wire = CONTOUR_NEXT_ONE[:-1] + bytes([0x4A])  # control solution type and location
    record = GlucoseMeasurement.from_bytes(wire)
    assert record.sample_type is SampleType.CONTROL_SOLUTION
    assert record.sample_location is SampleLocation.CONTROL_SOLUTION


def test_sequence_number_is_read_even_when_the_rest_does_not_decode() -> None:
    assert sequence_number_of(CONTOUR_NEXT_ONE[:5]) == 30
    assert sequence_number_of(b"\x13\x1e") is None


# -- construction and meaning --------------------------------------------------------------


def test_construction_takes_plain_ints_for_enums() -> None:
    record = GlucoseMeasurement(
        1,
        DateTime(2024, 1, 1),
        concentration=SFloat(95, -5),
        unit=1,  # type: ignore[arg-type]
        sample_type=1,  # type: ignore[arg-type]
        sample_location=15,  # type: ignore[arg-type]
    )
    assert record.sample_type is SampleType.CAPILLARY_WHOLE_BLOOD
    assert record.unit is ConcentrationUnit.MOL_PER_L


def test_construction_refuses_a_type_or_location_without_a_concentration() -> None:
    for half in ({"sample_type": SampleType.CAPILLARY_PLASMA}, {"sample_location": 1}):
        with pytest.raises(InconsistentFieldsError):
            GlucoseMeasurement(1, DateTime(2024, 1, 1), **half)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "changes",
    [{"sequence_number": 0x10000}, {"sequence_number": -1}, {"time_offset_minutes": 0x8000}],
)
def test_construction_refuses_out_of_range_fields(changes: dict[str, int]) -> None:
    fields: dict[str, object] = {"sequence_number": 1, "base_time": DateTime(2024, 1, 1), **changes}
    with pytest.raises(OutOfRangeError):
        GlucoseMeasurement(**fields)  # type: ignore[arg-type]


def test_user_facing_time_needs_a_known_base_time() -> None:
    record = GlucoseMeasurement(1, DateTime(0, 0, 0), time_offset_minutes=60)
    with pytest.raises(UnknownDateTimeError):
        record.user_facing_time()


def test_user_facing_time_past_year_9999_is_a_typed_error() -> None:
    record = GlucoseMeasurement(1, DateTime(9999, 12, 31, 23, 59), time_offset_minutes=0x7FFF)
    with pytest.raises(OutOfRangeError):
        record.user_facing_time()


def test_special_concentration_has_no_clinical_value() -> None:
    record = GlucoseMeasurement.from_bytes(CONTOUR_NEXT_ONE[:-3] + bytes.fromhex("ff07f1"))
    assert record.mg_dl is None and record.mmol_l is None


@given(measurements())
def test_encode_decode_identity(record: GlucoseMeasurement) -> None:
    wire = bytes(record)
    assert len(wire) == measurement_size(record.flags)
    assert GlucoseMeasurement.from_bytes(wire) == record
