"""A record as it came off the meter: its raw bytes always, its decoded form when it decodes.

A measurement that does not decode (a length that does not fit its flags, a month 13) is
still a record the meter holds: it keeps its raw bytes, its sequence number when the bytes
are long enough to carry one, and what was wrong, so the bridge can publish it as a held
record and move its checkpoint past it without losing it.
"""

from __future__ import annotations

from dataclasses import dataclass

from device.gls import (
    GlsError,
    GlucoseMeasurement,
    GlucoseMeasurementContext,
    MeasurementFlags,
)
from device.gls.measurement import MEASUREMENT_MIN_SIZE, sequence_number_of

# Bytes 3-9 of a measurement are its base time; with the time offset (bytes 10-11 when flags
# bit 0 is set) they tell one record from another with the same sequence number.
_TIME_START = 3
_TIME_OFFSET_SIZE = 2


@dataclass(frozen=True)
class MeterRecord:
    """One stored record: the measurement notification, and its context when one came."""

    raw: bytes
    measurement: GlucoseMeasurement | None  # None: the bytes did not decode
    problem: GlsError | None = None  # why they did not
    context: GlucoseMeasurementContext | None = None
    raw_context: bytes | None = None  # kept even when the context did not decode
    context_problem: GlsError | None = None

    @classmethod
    def decode(cls, raw: bytes) -> MeterRecord:
        try:
            return cls(raw, GlucoseMeasurement.from_bytes(raw))
        except GlsError as exc:
            return cls(raw, None, exc)

    @classmethod
    def of(
        cls, measurement: GlucoseMeasurement, context: GlucoseMeasurementContext | None = None
    ) -> MeterRecord:
        """A record from decoded values (as a meter would have sent them)."""
        return cls(
            bytes(measurement),
            measurement,
            context=context,
            raw_context=bytes(context) if context is not None else None,
        )

    def with_context(self, raw_context: bytes) -> MeterRecord:
        try:
            context: GlucoseMeasurementContext | None = GlucoseMeasurementContext.from_bytes(
                raw_context
            )
            problem = None
        except GlsError as exc:
            context, problem = None, exc
        return MeterRecord(self.raw, self.measurement, self.problem, context, raw_context, problem)

    @property
    def sequence_number(self) -> int | None:
        if self.measurement is not None:
            return self.measurement.sequence_number
        return sequence_number_of(self.raw)

    @property
    def context_follows(self) -> bool:
        """The flags announce a context record (read from the raw flags even when the rest
        of the record does not decode)."""
        return bool(self.raw) and bool(self.raw[0] & MeasurementFlags.CONTEXT_FOLLOWS)

    @property
    def stamp(self) -> str:
        """The raw time fields, to tell this record from another with the same number."""
        m = self.measurement
        if m is not None:
            return f"{m.base_time} {m.time_offset_minutes}"
        end = MEASUREMENT_MIN_SIZE
        if self.raw and self.raw[0] & MeasurementFlags.TIME_OFFSET_PRESENT:
            end += _TIME_OFFSET_SIZE
        return "raw:" + self.raw[_TIME_START:end].hex()
