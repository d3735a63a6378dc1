"""Glucose Feature (0x2A51): every defined bit pattern, reserved bits, names."""

from __future__ import annotations

import pytest

from device.gls import Feature, GlucoseFeature, LengthError, ReservedValueError

DEFINED_BITS = 11


def test_every_defined_bit_pattern_round_trips() -> None:
    for value in range(1 << DEFINED_BITS):
        wire = value.to_bytes(2, "little")
        decoded = GlucoseFeature.from_bytes(wire)
        assert bytes(decoded) == wire
        assert int(decoded.features) == value


@pytest.mark.parametrize("bit", range(DEFINED_BITS, 16))
def test_reserved_bits_are_ignored_on_receipt_and_never_sent(bit: int) -> None:
    received = GlucoseFeature.from_bytes((1 << bit | 1).to_bytes(2, "little"))
    assert received.features == Feature.LOW_BATTERY_DETECTION
    with pytest.raises(ReservedValueError) as caught:
        GlucoseFeature(Feature(1 << bit))
    assert caught.value.value == 1 << bit


def test_names_in_bit_order() -> None:
    decoded = GlucoseFeature.from_bytes(bytes.fromhex("0104"))  # bits 0 and 10
    assert decoded.names == ["low_battery_detection", "multiple_bond"]
    assert Feature.MULTIPLE_BOND in decoded
    assert Feature.TIME_FAULT not in decoded
    assert GlucoseFeature.from_bytes(bytes.fromhex("0002")).names == ["time_fault"]


def test_all_eleven_names() -> None:
    assert GlucoseFeature.from_bytes(bytes.fromhex("ff07")).names == [
        "low_battery_detection",
        "sensor_malfunction_detection",
        "sensor_sample_size",
        "sensor_strip_insertion_error_detection",
        "sensor_strip_type_error_detection",
        "sensor_result_high_low_detection",
        "sensor_temperature_high_low_detection",
        "sensor_read_interrupt_detection",
        "general_device_fault",
        "time_fault",
        "multiple_bond",
    ]


@pytest.mark.parametrize("wire", ["", "01", "010000"])
def test_wrong_length_is_a_length_error(wire: str) -> None:
    with pytest.raises(LengthError):
        GlucoseFeature.from_bytes(bytes.fromhex(wire))
