"""A meter's record memory: a ring of a few hundred records with 16-bit sequence numbers.

Real meters keep 500-1,000 results (Contour Next One 800, Accu-Chek Guide 720) and
overwrite the oldest when full. The sequence number counts every result the meter ever
took and wraps after 65,535. RACP filters compare sequence numbers as plain numbers, as
meters do, so a collector must handle the wrap itself.

A record is kept as the bytes the meter sends (a measurement, and its context if any), so a
test can store what a faulty meter would (a length that does not fit its flags, a reserved
bit) as well as what the codec encodes.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass

from device.gls import (
    GlucoseMeasurement,
    GlucoseMeasurementContext,
    Operator,
    SequenceNumberFilter,
)

DEFAULT_CAPACITY = 800
MIN_CAPACITY = 1
SEQUENCE_MODULO = 0x10000  # sequence numbers are uint16


@dataclass(frozen=True)
class StoredRecord:
    sequence_number: int
    measurement: bytes  # as notified on 0x2A18
    context: bytes | None = None  # as notified on 0x2A34

    @classmethod
    def of(
        cls, measurement: GlucoseMeasurement, context: GlucoseMeasurementContext | None = None
    ) -> StoredRecord:
        return cls(
            measurement.sequence_number,
            bytes(measurement),
            bytes(context) if context is not None else None,
        )


class RecordMemory:
    """Records oldest first; adding to a full memory drops the oldest."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY, next_sequence: int = 0) -> None:
        if capacity < MIN_CAPACITY:
            raise ValueError(f"capacity must be at least {MIN_CAPACITY}")
        self.capacity = capacity
        self.next_sequence = next_sequence % SEQUENCE_MODULO
        self._records: deque[StoredRecord] = deque(maxlen=capacity)

    def __len__(self) -> int:
        return len(self._records)

    def __iter__(self) -> Iterator[StoredRecord]:
        return iter(list(self._records))

    def take_sequence_number(self) -> int:
        number = self.next_sequence
        self.next_sequence = (number + 1) % SEQUENCE_MODULO
        return number

    def add(self, record: StoredRecord) -> None:
        self._records.append(record)

    def clear(self, *, reset_sequence: bool = True) -> None:
        """Erase every record, as a meter's "delete memory" menu does (most reset the count)."""
        self._records.clear()
        if reset_sequence:
            self.next_sequence = 0

    def select(
        self, operator: Operator, record_filter: SequenceNumberFilter | None
    ) -> list[StoredRecord]:
        records = list(self._records)
        if operator is Operator.ALL_RECORDS:
            return records
        if operator is Operator.FIRST_RECORD:
            return records[:1]
        if operator is Operator.LAST_RECORD:
            return records[-1:]
        low = record_filter.minimum if record_filter and record_filter.minimum is not None else 0
        high = (
            record_filter.maximum
            if record_filter and record_filter.maximum is not None
            else SEQUENCE_MODULO - 1
        )
        return [r for r in records if low <= r.sequence_number <= high]

    def delete(self, victims: list[StoredRecord]) -> None:
        gone = {id(r) for r in victims}
        kept = [r for r in self._records if id(r) not in gone]
        self._records = deque(kept, maxlen=self.capacity)
