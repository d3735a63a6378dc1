"""Fuzzing: arbitrary bytes into every decoder raise nothing but GlsError subclasses.

Whatever decodes must re-encode to bytes that decode to the same value, and to the very same
bytes for the decoders that ignore nothing on receipt (RACP values, SFLOAT, Date Time): the
round-trip property over every valid payload hypothesis finds, not only the ones we thought
of. Measurements, contexts and features ignore reserved values on receipt, so their bytes
may differ in exactly those values (tests/device/test_gls_measurement.py checks which).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from device.gls import (
    DateTime,
    GlsError,
    GlucoseFeature,
    GlucoseMeasurement,
    GlucoseMeasurementContext,
    RacpNumberOfRecords,
    RacpRequest,
    RacpResponse,
    SFloat,
    decode_racp,
)
from device.gls.context import ContextFlags, context_size
from device.gls.json import DECODERS
from device.gls.measurement import MeasurementFlags, measurement_size

# Enough examples per decoder to reach the field checks, few enough for a quick suite.
FUZZ_EXAMPLES = 300

Decoder = Callable[[bytes], object]
DECODER_FUNCTIONS: dict[str, Decoder] = {
    "measurement": GlucoseMeasurement.from_bytes,
    "context": GlucoseMeasurementContext.from_bytes,
    "feature": GlucoseFeature.from_bytes,
    "racp_request": RacpRequest.from_bytes,
    "racp_response": RacpResponse.from_bytes,
    "racp_number_of_records": RacpNumberOfRecords.from_bytes,
    "racp": decode_racp,
    "sfloat": SFloat.from_bytes,
    "date_time": DateTime.from_bytes,
}


# Decoders that keep every bit they receive: their round trip is byte for byte.
EXACT = {
    RacpRequest.from_bytes,
    RacpResponse.from_bytes,
    RacpNumberOfRecords.from_bytes,
    decode_racp,
    SFloat.from_bytes,
    DateTime.from_bytes,
}


def _decode_or_gls_error(decoder: Decoder, data: bytes) -> bool:
    """True if ``data`` decoded (and re-encoded to what decodes the same); False on a
    GlsError."""
    try:
        value = decoder(data)
    except GlsError:
        return False
    again = bytes(value)  # type: ignore[call-overload]
    assert decoder(again) == value
    if decoder in EXACT:
        assert again == data
    return True


@pytest.mark.parametrize("name", sorted(DECODER_FUNCTIONS))
@settings(max_examples=FUZZ_EXAMPLES)
@given(data=st.binary(max_size=40))
def test_arbitrary_bytes(name: str, data: bytes) -> None:
    _decode_or_gls_error(DECODER_FUNCTIONS[name], data)


def _sized_after_flags(size_for: Callable[[int], int]) -> st.SearchStrategy[bytes]:
    """A flags byte followed by exactly as many random bytes as those flags ask for."""
    return st.integers(0, 0xFF).flatmap(
        lambda flags: st.binary(min_size=size_for(flags) - 1, max_size=size_for(flags) - 1).map(
            lambda rest: bytes([flags]) + rest
        )
    )


measurement_payloads = _sized_after_flags(lambda f: measurement_size(MeasurementFlags(f & 0x1F)))
context_payloads = _sized_after_flags(lambda f: context_size(ContextFlags(f)))


@settings(max_examples=FUZZ_EXAMPLES)
@given(measurement_payloads)
def test_right_length_measurements_reach_the_field_checks(data: bytes) -> None:
    _decode_or_gls_error(GlucoseMeasurement.from_bytes, data)


@settings(max_examples=FUZZ_EXAMPLES)
@given(context_payloads)
def test_right_length_contexts_reach_the_field_checks(data: bytes) -> None:
    _decode_or_gls_error(GlucoseMeasurementContext.from_bytes, data)


@settings(max_examples=FUZZ_EXAMPLES)
@given(
    st.sampled_from([1, 2, 3, 4]),
    st.integers(0, 7),
    st.sampled_from([b"", b"\x01", b"\x02", b"\x03"]),
    st.binary(max_size=15),
)
def test_racp_requests_near_the_valid_ones(
    op_code: int, operator: int, filter_type: bytes, rest: bytes
) -> None:
    data = bytes([op_code, operator]) + filter_type + rest
    _decode_or_gls_error(RacpRequest.from_bytes, data)


@pytest.mark.parametrize("kind", sorted(DECODERS))
@settings(max_examples=FUZZ_EXAMPLES)
@given(data=st.one_of(st.binary(max_size=24), measurement_payloads, context_payloads))
def test_json_rendering_raises_only_gls_errors(kind: str, data: bytes) -> None:
    with contextlib.suppress(GlsError):
        DECODERS[kind](data)
