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

Receiving, reserved values are ignored, as Bluetooth specifications require of receivers
(Core Specification, Vol 1, Part E, "Reserved for Future Use": a receiver ignores them): reserved
flag and sensor status bits are dropped, and a reserved sample type or location nibble reads
as "not given" (None) while the concentration it travels with is kept. Such a record still
decodes; the bridge keeps its raw bytes beside the reading, so a later decoder can reread it.
Encoding never produces a reserved value (a missing type or location is written as 0).
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass
from typing import ClassVar

from device.gls import uuids
from device.gls.codes import SampleLocation, SampleType
from device.gls.concentration import ConcentrationUnit, to_mg_dl, to_mmol_l
from device.gls.date_time import DateTime
from device.gls.errors import (
    InconsistentFieldsError,
    LengthError,
    OutOfRangeError,
    ReservedValueError,
)
from device.gls.sfloat import SFloat, SFloatSpecial
from device.gls.wire import (
    SINT16_MAX,
    SINT16_MIN,
    UINT16_MAX,
    E,
    Reader,
    check_range,
    lookup,
    require_length,
    s16,
    u8,
    u16,
)

MEASUREMENT_UUID = uuids.MEASUREMENT
_NIBBLE = 4
_NIBBLE_MASK = 0x0F
# A sample type or location not given (or reserved on receipt) is written as this nibble.
_NOT_GIVEN = 0


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

_SEQUENCE_END = 3  # flags u8, then the sequence number u16
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


def _known(enum_type: type[E], value: int) -> E | None:
    """The member for a received nibble, or None for a value the specification reserves."""
    try:
        return enum_type(value)
    except ValueError:
        return None


def _sensor_status(value: int) -> SensorStatus:
    check_range("sensor status", int(value), 0, UINT16_MAX)
    if value & _RESERVED_SENSOR_STATUS:
        raise ReservedValueError("sensor status bits", value & _RESERVED_SENSOR_STATUS)
    return SensorStatus(value)


def sequence_number_of(data: bytes) -> int | None:
    """The sequence number of a measurement's bytes, read even when the rest does not decode
    (it is the first field after the flags); None when the value is too short to hold it."""
    return int.from_bytes(data[1:3], "little") if len(data) >= _SEQUENCE_END else None


def reserved_fields(data: bytes) -> list[str]:
    """What a received measurement carries that the specification reserves (and decoding
    ignores), for logs and ``glucobridge decode``; empty for a record with none."""
    if not data:
        return []
    found = []
    if data[0] & _RESERVED_FLAGS:
        found.append(f"flags bits 0x{data[0] & _RESERVED_FLAGS:02x}")
    flags = MeasurementFlags(data[0] & ~_RESERVED_FLAGS)
    if len(data) != measurement_size(flags):
        return found
    at = MEASUREMENT_MIN_SIZE + (
        _TIME_OFFSET_SIZE if MeasurementFlags.TIME_OFFSET_PRESENT in flags else 0
    )
    if MeasurementFlags.CONCENTRATION_PRESENT in flags:
        type_location = data[at + SFloat.SIZE]
        if _known(SampleType, type_location & _NIBBLE_MASK) is None:
            found.append(f"sample type {type_location & _NIBBLE_MASK}")
        if _known(SampleLocation, type_location >> _NIBBLE) is None:
            found.append(f"sample location {type_location >> _NIBBLE}")
        if SFloat.from_bytes(data[at : at + SFloat.SIZE]).special is SFloatSpecial.RESERVED:
            found.append("concentration 0x0801")
        at += _CONCENTRATION_SIZE
    if MeasurementFlags.SENSOR_STATUS_PRESENT in flags:
        status = int.from_bytes(data[at : at + _SENSOR_STATUS_SIZE], "little")
        if status & _RESERVED_SENSOR_STATUS:
            found.append(f"sensor status bits 0x{status & _RESERVED_SENSOR_STATUS:04x}")
    return found


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
        if self.concentration is None and (
            self.sample_type is not None or self.sample_location is not None
        ):
            raise InconsistentFieldsError(
                ("concentration", "sample type", "sample location"),
                "type and location travel with the concentration (flags bit 1)",
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
        flags = MeasurementFlags(data[0] & ~_RESERVED_FLAGS)  # reserved bits: ignored
        require_length(data, measurement_size(flags), "flags")
        reader = Reader(data[1:])
        sequence_number = reader.u16()
        base_time = DateTime.read(reader)
        offset = reader.s16() if MeasurementFlags.TIME_OFFSET_PRESENT in flags else None
        concentration = sample_type = sample_location = None
        if MeasurementFlags.CONCENTRATION_PRESENT in flags:
            concentration = SFloat.from_raw(reader.u16())
            type_location = reader.u8()
            sample_type = _known(SampleType, type_location & _NIBBLE_MASK)
            sample_location = _known(SampleLocation, type_location >> _NIBBLE)
        status = None
        if MeasurementFlags.SENSOR_STATUS_PRESENT in flags:
            status = SensorStatus(reader.u16() & ~_RESERVED_SENSOR_STATUS)  # reserved: ignored
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
        if self.concentration is not None:
            location = _NOT_GIVEN if self.sample_location is None else int(self.sample_location)
            kind = _NOT_GIVEN if self.sample_type is None else int(self.sample_type)
            out += bytes(self.concentration)
            out += u8(location << _NIBBLE | kind)
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
