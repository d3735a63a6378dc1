"""IEEE 11073 SFLOAT: every one of the 65 536 raw values, the specials, exact encoding."""

from __future__ import annotations

import math
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from device.gls import (
    LengthError,
    NotRepresentableError,
    OutOfRangeError,
    SFloat,
    SFloatSpecial,
)

from .test_gls_strategies import RESERVED_SFLOAT_RAW


@pytest.mark.parametrize(
    ("wire", "mantissa", "exponent", "value"),
    [
        ("6fb0", 111, -5, "0.00111"),  # Contour Next One, 111 mg/dL in kg/L
        ("50c0", 80, -4, "0.0080"),  # mol/L meter (Android-BLE-Library #130), 8.0 mmol/L
        ("0000", 0, 0, "0"),
        ("ff0f", -1, 0, "-1"),
        ("0070", 0, 7, "0"),
        ("ff77", 2047, 7, "2.047E+10"),  # largest: the NaN mantissa is a number off exponent 0
        ("0088", -2048, -8, "-2.048E-5"),
        ("fd07", 2045, 0, "2045"),
    ],
)
def test_decodes_mantissa_and_exponent_exactly(
    wire: str, mantissa: int, exponent: int, value: str
) -> None:
    decoded = SFloat.from_bytes(bytes.fromhex(wire))
    assert decoded == SFloat(mantissa, exponent)
    assert decoded.decimal == Decimal(value)
    assert decoded.special is None


@pytest.mark.parametrize(
    ("raw", "special", "as_float"),
    [
        (0x07FF, SFloatSpecial.NAN, math.nan),
        (0x0800, SFloatSpecial.NRES, math.nan),
        (0x07FE, SFloatSpecial.POSITIVE_INFINITY, math.inf),
        (0x0802, SFloatSpecial.NEGATIVE_INFINITY, -math.inf),
    ],
)
def test_special_values(raw: int, special: SFloatSpecial, as_float: float) -> None:
    decoded = SFloat.from_raw(raw)
    assert decoded.special is special
    assert decoded.decimal is None
    assert not decoded.is_number
    assert SFloat.special_value(special) == decoded
    assert decoded.raw == raw
    if math.isnan(as_float):
        assert math.isnan(float(decoded))
    else:
        assert float(decoded) == as_float
    assert str(decoded) == special.value


def test_the_reserved_raw_value_is_kept_as_no_number() -> None:
    """0x0801 is reserved by IEEE 11073-20601: a receiver keeps it as what it is."""
    decoded = SFloat.from_bytes(bytes.fromhex("0108"))
    assert decoded.special is SFloatSpecial.RESERVED
    assert decoded.decimal is None and math.isnan(float(decoded))
    assert decoded.raw == RESERVED_SFLOAT_RAW


def test_every_raw_value_round_trips() -> None:
    for raw in range(0x10000):
        wire = raw.to_bytes(2, "little")
        assert bytes(SFloat.from_bytes(wire)) == wire, hex(raw)


def test_no_number_encodes_as_the_reserved_value() -> None:
    with pytest.raises(NotRepresentableError):
        SFloat.from_value(-2047)


@pytest.mark.parametrize("wire", ["", "01", "010203"])
def test_wrong_length_is_a_length_error(wire: str) -> None:
    with pytest.raises(LengthError) as caught:
        SFloat.from_bytes(bytes.fromhex(wire))
    assert (caught.value.expected, caught.value.got) == (2, len(wire) // 2)


@pytest.mark.parametrize(("mantissa", "exponent"), [(2048, 0), (-2049, 0), (1, 8), (1, -9)])
def test_construction_checks_field_ranges(mantissa: int, exponent: int) -> None:
    with pytest.raises(OutOfRangeError):
        SFloat(mantissa, exponent)


@pytest.mark.parametrize(
    ("value", "exponent", "expected"),
    [
        ("0.00111", None, SFloat(111, -5)),
        (0.00111, None, SFloat(111, -5)),  # a float means its shortest repr
        (Decimal("0.008"), None, SFloat(8, -3)),
        (Decimal("0.008"), -4, SFloat(80, -4)),  # how the mol/L meter sends it
        (20000, None, SFloat(2, 4)),
        (-3, None, SFloat(-3, 0)),
        (0, None, SFloat(0, 0)),
        ("2.047E+10", None, SFloat(2047, 7)),
        ("1E+8", None, SFloat(10, 7)),  # shifted into the exponent range
        (math.inf, None, SFloat.special_value(SFloatSpecial.POSITIVE_INFINITY)),
        (-math.inf, None, SFloat.special_value(SFloatSpecial.NEGATIVE_INFINITY)),
        (math.nan, None, SFloat.special_value(SFloatSpecial.NAN)),
    ],
)
def test_from_value_encodes_exactly(
    value: Decimal | int | float | str, exponent: int | None, expected: SFloat
) -> None:
    assert SFloat.from_value(value, exponent) == expected


@pytest.mark.parametrize(
    ("value", "exponent"),
    [
        ("12345", None),  # five significant digits; 12 bits hold 2047 at most
        ("0.123456", None),
        ("1E-9", None),  # below the smallest exponent
        ("3E+11", None),  # above the largest number
        ("2046", None),  # +INF's bit pattern at exponent 0
        ("0.00111", -4),  # not a whole multiple of 1e-4
        ("Infinity", None),  # a Decimal infinity is not a float one: refused, not guessed
    ],
)
def test_from_value_refuses_what_it_cannot_encode_exactly(value: str, exponent: int | None) -> None:
    with pytest.raises(NotRepresentableError):
        SFloat.from_value(value, exponent)


@given(st.integers(-2045, 2045), st.integers(-8, 7))
def test_from_value_finds_an_encoding_of_every_finite_value(mantissa: int, exponent: int) -> None:
    exact = SFloat(mantissa, exponent).decimal
    assert exact is not None
    assert SFloat.from_value(exact).decimal == exact
    assert SFloat.from_value(exact, exponent) == SFloat(mantissa, exponent)
