"""Glucose Measurement characteristic (0x2A18): one stored reading.

Layout (little-endian)::

    flags u8
    sequence number u16
    base time (Date Time, 7 bytes)
    [time offset s16, minutes]                      flags bit 0
    [concentration SFLOAT + type-sample location u8] flags bit 1 (bit 2: 0 kg/L, 1 mol/L)
    [sensor status annunciation u16]                flags bit 3
                                                    flags bit 4: a Context record follows

The type-sample location byte holds the sample type in its low nibble and the location in
its high nibble. User-facing time = base time + time offset, both the meter's local clock.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass
from typing import ClassVar

from device.gls.codes import SampleLocation, SampleType
from device.gls.concentration import ConcentrationUnit, to_mg_dl, to_mmol_l
from device.gls.date_time import DateTime
from device.gls.errors import (
    InconsistentFieldsError,
    LengthError,
    OutOfRangeError,
    ReservedValueError,
)
from device.gls.sfloat import SFloat
from device.gls.wire import (
    SINT16_MAX,
    SINT16_MIN,
    UINT16_MAX,
    Reader,
    check_range,
    lookup,
    require_length,
    s16,
    u8,
    u16,
)

MEASUREMENT_UUID = 0x2A18
_NIBBLE = 4
_NIBBLE_MASK = 0x0F


class MeasurementFlags(enum.IntFlag):
    """Glucose Measurement flags; bits 5-7 are reserved."""

    TIME_OFFSET_PRESENT = 0x01
    CONCENTRATION_PRESENT = 0x02  # concentration and type-sample location
    UNITS_MOL_PER_L = 0x04  # clear: kg/L
    SENSOR_STATUS_PRESENT = 0x08
    CONTEXT_FOLLOWS = 0x10


_RESERVED_FLAGS = 0xFF & ~sum(MeasurementFlags)


class SensorStatus(enum.IntFlag):
    """Sensor Status Annunciation: what went wrong at the time of measurement; bits 12-15 RFU."""

    BATTERY_LOW = 1 << 0
    SENSOR_MALFUNCTION = 1 << 1
    SAMPLE_SIZE_INSUFFICIENT = 1 << 2
    STRIP_INSERTION_ERROR = 1 << 3
    STRIP_TYPE_INCORRECT = 1 << 4
    RESULT_TOO_HIGH = 1 << 5  # higher than the device can process
    RESULT_TOO_LOW = 1 << 6  # lower than the device can process
    TEMPERATURE_TOO_HIGH = 1 << 7
    TEMPERATURE_TOO_LOW = 1 << 8
    READ_INTERRUPTED = 1 << 9  # strip pulled too soon
    GENERAL_DEVICE_FAULT = 1 << 10
    TIME_FAULT = 1 << 11  # the time may be inaccurate


_RESERVED_SENSOR_STATUS = UINT16_MAX & ~sum(SensorStatus)

# Fixed part: flags, sequence number, base time.
MEASUREMENT_MIN_SIZE = 1 + 2 + DateTime.SIZE
_TIME_OFFSET_SIZE = 2
_CONCENTRATION_SIZE = SFloat.SIZE + 1  # SFLOAT + type-sample location
_SENSOR_STATUS_SIZE = 2


def measurement_size(flags: MeasurementFlags) -> int:
    """The exact length of a Glucose Measurement carrying ``flags``."""
    size = MEASUREMENT_MIN_SIZE
    if MeasurementFlags.TIME_OFFSET_PRESENT in flags:
        size += _TIME_OFFSET_SIZE
    if MeasurementFlags.CONCENTRATION_PRESENT in flags:
        size += _CONCENTRATION_SIZE
    if MeasurementFlags.SENSOR_STATUS_PRESENT in flags:
        size += _SENSOR_STATUS_SIZE
    return size


def _sensor_status(value: int) -> SensorStatus:
    check_range("sensor status", int(value), 0, UINT16_MAX)
    if value & _RESERVED_SENSOR_STATUS:
        raise ReservedValueError("sensor status bits", value & _RESERVED_SENSOR_STATUS)
    return SensorStatus(value)


@dataclass(frozen=True, slots=True)
class GlucoseMeasurement:
    """One Glucose Measurement record; absent optional fields are None.

    ``concentration``, ``sample_type`` and ``sample_location`` travel together (flags bit 1).
    ``unit`` is kept even without a concentration, because flags bit 2 is on the wire anyway.
    ``sensor_status`` None means "field absent"; ``SensorStatus(0)`` means "present, all clear".
    """

    UUID: ClassVar[int] = MEASUREMENT_UUID

    sequence_number: int
    base_time: DateTime
    time_offset_minutes: int | None = None
    concentration: SFloat | None = None
    unit: ConcentrationUnit = ConcentrationUnit.KG_PER_L
    sample_type: SampleType | None = None
    sample_location: SampleLocation | None = None
    sensor_status: SensorStatus | None = None
    context_follows: bool = False

    def __post_init__(self) -> None:
        check_range("sequence number", self.sequence_number, 0, UINT16_MAX)
        if not isinstance(self.base_time, DateTime):
            raise TypeError(f"base_time must be a DateTime, not {type(self.base_time).__name__}")
        if self.time_offset_minutes is not None:
            check_range("time offset", self.time_offset_minutes, SINT16_MIN, SINT16_MAX)
        parts = (self.concentration, self.sample_type, self.sample_location)
        if any(part is None for part in parts) and any(part is not None for part in parts):
            raise InconsistentFieldsError(
                ("concentration", "sample type", "sample location"),
                "all three are present together or none is (flags bit 1)",
            )
        if self.concentration is not None and not isinstance(self.concentration, SFloat):
            raise TypeError("concentration must be an SFloat")
        object.__setattr__(self, "unit", lookup(ConcentrationUnit, self.unit, "unit"))
        if self.sample_type is not None:
            object.__setattr__(
                self, "sample_type", lookup(SampleType, self.sample_type, "sample type")
            )
        if self.sample_location is not None:
            location = lookup(SampleLocation, self.sample_location, "sample location")
            object.__setattr__(self, "sample_location", location)
        if self.sensor_status is not None:
            object.__setattr__(self, "sensor_status", _sensor_status(self.sensor_status))

    # -- wire --------------------------------------------------------------------------

    @classmethod
    def from_bytes(cls, data: bytes) -> GlucoseMeasurement:
        if not data:
            raise LengthError(MEASUREMENT_MIN_SIZE, 0, "measurement fields", at_least=True)
        if data[0] & _RESERVED_FLAGS:
            raise ReservedValueError("measurement flags bits", data[0] & _RESERVED_FLAGS)
        flags = MeasurementFlags(data[0])
        require_length(data, measurement_size(flags), "flags")
        reader = Reader(data[1:])
        sequence_number = reader.u16()
        base_time = DateTime.read(reader)
        offset = reader.s16() if MeasurementFlags.TIME_OFFSET_PRESENT in flags else None
        concentration = sample_type = sample_location = None
        if MeasurementFlags.CONCENTRATION_PRESENT in flags:
            concentration = SFloat.from_raw(reader.u16())
            type_location = reader.u8()
            sample_type = lookup(SampleType, type_location & _NIBBLE_MASK, "sample type")
            sample_location = lookup(SampleLocation, type_location >> _NIBBLE, "sample location")
        status = None
        if MeasurementFlags.SENSOR_STATUS_PRESENT in flags:
            status = _sensor_status(reader.u16())
        return cls(
            sequence_number=sequence_number,
            base_time=base_time,
            time_offset_minutes=offset,
            concentration=concentration,
            unit=(
                ConcentrationUnit.MOL_PER_L
                if MeasurementFlags.UNITS_MOL_PER_L in flags
                else ConcentrationUnit.KG_PER_L
            ),
            sample_type=sample_type,
            sample_location=sample_location,
            sensor_status=status,
            context_follows=MeasurementFlags.CONTEXT_FOLLOWS in flags,
        )

    @property
    def flags(self) -> MeasurementFlags:
        flags = MeasurementFlags(0)
        if self.time_offset_minutes is not None:
            flags |= MeasurementFlags.TIME_OFFSET_PRESENT
        if self.concentration is not None:
            flags |= MeasurementFlags.CONCENTRATION_PRESENT
        if self.unit is ConcentrationUnit.MOL_PER_L:
            flags |= MeasurementFlags.UNITS_MOL_PER_L
        if self.sensor_status is not None:
            flags |= MeasurementFlags.SENSOR_STATUS_PRESENT
        if self.context_follows:
            flags |= MeasurementFlags.CONTEXT_FOLLOWS
        return flags

    def __bytes__(self) -> bytes:
        out = u8(self.flags) + u16(self.sequence_number) + bytes(self.base_time)
        if self.time_offset_minutes is not None:
            out += s16(self.time_offset_minutes)
        # __post_init__ makes the three present together; the test is for the type checker.
        if (
            self.concentration is not None
            and self.sample_type is not None
            and self.sample_location is not None
        ):
            out += bytes(self.concentration)
            out += u8(self.sample_location << _NIBBLE | self.sample_type)
        if self.sensor_status is not None:
            out += u16(self.sensor_status)
        return out

    # -- meaning -----------------------------------------------------------------------

    def user_facing_time(self) -> dt.datetime:
        """Base time + time offset, naive (the meter's wall clock).

        Raises :class:`UnknownDateTimeError` if the base time is not known and
        :class:`OutOfRangeError` if the offset carries it past what a datetime can hold.
        """
        base = self.base_time.to_datetime()
        offset = dt.timedelta(minutes=self.time_offset_minutes or 0)
        try:
            return base + offset
        except OverflowError:
            raise OutOfRangeError(
                "user facing time", f"{base.isoformat()} {offset}", dt.datetime.min, dt.datetime.max
            ) from None

    @property
    def mg_dl(self) -> float | None:
        """The concentration in mg/dL; None when absent or a special value."""
        if self.concentration is None:
            return None
        return to_mg_dl(self.concentration, self.unit)

    @property
    def mmol_l(self) -> float | None:
        """The concentration in mmol/L; None when absent or a special value."""
        if self.concentration is None:
            return None
        return to_mmol_l(self.concentration, self.unit)

    @property
    def is_control_solution(self) -> bool:
        """True for a control-solution test: stored, never counted as a patient reading."""
        return (
            self.sample_type is SampleType.CONTROL_SOLUTION
            or self.sample_location is SampleLocation.CONTROL_SOLUTION
        )
