"""Glucose Feature characteristic (0x2A51): what the meter can detect, a uint16 bit field.

Bits 0-10 are defined by the Glucose Service specification (v1.0); bits 11-15 are reserved
and ignored on receipt (a newer meter may set them), never sent.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import ClassVar

from device.gls import uuids
from device.gls.errors import ReservedValueError
from device.gls.wire import UINT16_MAX, check_range, require_length, snake_name, u16

FEATURE_UUID = uuids.FEATURE


class Feature(enum.IntFlag):
    """One supported feature of the meter."""

    LOW_BATTERY_DETECTION = 1 << 0
    SENSOR_MALFUNCTION_DETECTION = 1 << 1
    SENSOR_SAMPLE_SIZE = 1 << 2
    SENSOR_STRIP_INSERTION_ERROR_DETECTION = 1 << 3
    SENSOR_STRIP_TYPE_ERROR_DETECTION = 1 << 4
    SENSOR_RESULT_HIGH_LOW_DETECTION = 1 << 5
    SENSOR_TEMPERATURE_HIGH_LOW_DETECTION = 1 << 6
    SENSOR_READ_INTERRUPT_DETECTION = 1 << 7
    GENERAL_DEVICE_FAULT = 1 << 8
    TIME_FAULT = 1 << 9
    MULTIPLE_BOND = 1 << 10  # more than one collector may bond with the meter


_RESERVED_FEATURES = UINT16_MAX & ~sum(Feature)


@dataclass(frozen=True, slots=True)
class GlucoseFeature:
    """The meter's Glucose Feature value."""

    UUID: ClassVar[int] = FEATURE_UUID
    SIZE: ClassVar[int] = 2

    features: Feature = Feature(0)  # noqa: RUF009  (an immutable int flag, safe to share)

    def __post_init__(self) -> None:
        value = check_range("glucose feature", int(self.features), 0, UINT16_MAX)
        if value & _RESERVED_FEATURES:
            raise ReservedValueError("glucose feature bits", value & _RESERVED_FEATURES)
        object.__setattr__(self, "features", Feature(value))

    @classmethod
    def from_bytes(cls, data: bytes) -> GlucoseFeature:
        require_length(data, cls.SIZE, "glucose feature fields")
        return cls(Feature(int.from_bytes(data, "little") & ~_RESERVED_FEATURES))

    def __bytes__(self) -> bytes:
        return u16(self.features)

    def __contains__(self, feature: Feature) -> bool:
        return feature in self.features

    @property
    def names(self) -> list[str]:
        """Snake-case names of the supported features, in bit order."""
        return [snake_name(feature) for feature in Feature if feature in self.features]
