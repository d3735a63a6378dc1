"""Bluetooth Date Time: layout, validation, and the "not known" zeros."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from device.gls import (
    DateTime,
    LengthError,
    NotRepresentableError,
    OutOfRangeError,
    UnknownDateTimeError,
)

from .test_gls_strategies import date_times


def test_decodes_the_contour_next_one_base_time() -> None:
    decoded = DateTime.from_bytes(bytes.fromhex("e2070914051b07"))
    assert decoded == DateTime(2018, 9, 20, 5, 27, 7)
    assert decoded.to_datetime() == dt.datetime(2018, 9, 20, 5, 27, 7)
    assert str(decoded) == "2018-09-20T05:27:07"


def test_year_is_little_endian() -> None:
    assert bytes(DateTime(2020, 2, 29)) == bytes.fromhex("e407021d000000")


@pytest.mark.parametrize(
    ("fields", "unknown"),
    [((0, 9, 20), "year"), ((2018, 0, 20), "month"), ((2018, 9, 0), "day"), ((0, 0, 0), "year")],
)
def test_zero_means_not_known_and_still_round_trips(
    fields: tuple[int, int, int], unknown: str
) -> None:
    value = DateTime(*fields, hours=5)
    assert not value.is_known
    assert DateTime.from_bytes(bytes(value)) == value
    with pytest.raises(UnknownDateTimeError) as caught:
        value.to_datetime()
    assert caught.value.field == unknown


@pytest.mark.parametrize(
    "fields",
    [
        (1581, 1, 1, 0, 0, 0),
        (10000, 1, 1, 0, 0, 0),
        (2018, 13, 1, 0, 0, 0),
        (2018, 9, 31, 0, 0, 0),  # September has 30 days
        (2019, 2, 29, 0, 0, 0),  # not a leap year
        (0, 2, 30, 0, 0, 0),  # no year has 30 February
        (2018, 9, 20, 24, 0, 0),
        (2018, 9, 20, 0, 60, 0),
        (2018, 9, 20, 0, 0, 60),
        (2018, 9, 20, -1, 0, 0),
    ],
)
def test_out_of_range_fields_are_refused(fields: tuple[int, ...]) -> None:
    with pytest.raises(OutOfRangeError):
        DateTime(*fields)


def test_out_of_range_bytes_are_refused() -> None:
    with pytest.raises(OutOfRangeError) as caught:
        DateTime.from_bytes(bytes.fromhex("e2070d14051b07"))  # month 13
    assert caught.value.field == "month"


def test_29_february_of_an_unknown_year_is_allowed() -> None:
    assert DateTime(0, 2, 29).day == 29


@pytest.mark.parametrize("wire", ["", "e2070914051b", "e2070914051b0700"])
def test_wrong_length_is_a_length_error(wire: str) -> None:
    with pytest.raises(LengthError):
        DateTime.from_bytes(bytes.fromhex(wire))


def test_from_datetime_drops_sub_seconds_and_refuses_a_zone() -> None:
    assert DateTime.from_datetime(dt.datetime(2024, 3, 31, 2, 30, 5, 999_999)) == DateTime(
        2024, 3, 31, 2, 30, 5
    )
    with pytest.raises(NotRepresentableError):
        DateTime.from_datetime(dt.datetime(2024, 3, 31, tzinfo=dt.UTC))


@given(st.datetimes(min_value=dt.datetime(1582, 1, 1), max_value=dt.datetime(9999, 12, 31)))
def test_naive_datetimes_survive_the_wire(value: dt.datetime) -> None:
    wire = bytes(DateTime.from_datetime(value))
    assert DateTime.from_bytes(wire).to_datetime() == value.replace(microsecond=0)


@given(date_times())
def test_decode_encode_identity(value: DateTime) -> None:
    assert DateTime.from_bytes(bytes(value)) == value
