"""A reading's identity is computed in Python at intake and in SQL for rows stored before
migration 0005 (`reading_identity()`); the two must agree exactly, or a re-sync of an old
reading would be stored twice. And identity separates what must never be taken for one
another: two devices, two sources, two values of a device without sequence numbers."""

from __future__ import annotations

import uuid
from datetime import datetime

import psycopg
from hypothesis import given, settings
from hypothesis import strategies as st

from core.intake import instant_key, reading_identity
from core.vocabulary import SourceKind
from stack.local import Services

PATIENT = uuid.UUID("8d2f4a3c-1b6e-4f7a-9c0d-2e5b7a1c3d4f")
AT = datetime(2024, 3, 31, 2, 30)

meter_times = st.datetimes(min_value=datetime(2005, 1, 1), max_value=datetime(2035, 12, 31))
values = st.floats(min_value=10, max_value=1000, allow_nan=False).map(lambda v: round(v, 2))


@settings(max_examples=200, deadline=None)
@given(
    patient=st.one_of(st.none(), st.uuids()),
    device=st.text(
        alphabet=st.characters(min_codepoint=33, max_codepoint=0x4E2D, exclude_categories=["Cs"]),
        min_size=1,
        max_size=20,
    ),
    source=st.sampled_from(list(SourceKind)),
    sequence=st.one_of(st.none(), st.integers(0, 0xFFFF)),
    meter_time=meter_times,
    value=values,
)
def test_python_and_sql_compute_the_same_identity(
    services: Services,
    patient: uuid.UUID | None,
    device: str,
    source: SourceKind,
    sequence: int | None,
    meter_time: datetime,
    value: float,
) -> None:
    with psycopg.connect(services.database_url) as conn:  # a pure function: no table read
        row = conn.execute(
            "SELECT reading_identity(%s, %s, %s, %s, %s::timestamp, %s)",
            (patient, device, source.value, sequence, meter_time, value),
        ).fetchone()
    assert row is not None
    assert row[0] == reading_identity(patient, device, source, sequence, meter_time, value)


def test_a_cgm_and_a_meter_reading_of_one_minute_are_two_readings() -> None:
    cgm = reading_identity(PATIENT, "import-a", SourceKind.CGM, None, AT, 113.4)
    meter = reading_identity(PATIENT, "import-a", SourceKind.METER, None, AT, 113.4)
    other_device = reading_identity(PATIENT, "import-b", SourceKind.CGM, None, AT, 113.4)
    assert len({cgm, meter, other_device}) == 3


def test_a_changed_value_at_one_instant_is_another_reading_with_the_same_instant_key() -> None:
    first = reading_identity(PATIENT, "xdrip", SourceKind.CGM, None, AT, 113.0)
    again = reading_identity(PATIENT, "xdrip", SourceKind.CGM, None, AT, 113.0)
    corrected = reading_identity(PATIENT, "xdrip", SourceKind.CGM, None, AT, 121.0)
    assert first == again and first != corrected
    key = instant_key(PATIENT, "xdrip", SourceKind.CGM, AT)
    assert key == instant_key(PATIENT, "xdrip", SourceKind.CGM, AT)


def test_a_meter_record_is_its_sequence_number_and_time_whatever_its_value() -> None:
    # A re-sync of the same record is a duplicate even if a later decoder reads its value
    # differently; another patient's bridge syncing the same serial is another reading.
    a = reading_identity(PATIENT, "SN-1", SourceKind.METER, 7, AT, 100.0)
    b = reading_identity(PATIENT, "SN-1", SourceKind.METER, 7, AT, 100.5)
    c = reading_identity(uuid.uuid4(), "SN-1", SourceKind.METER, 7, AT, 100.0)
    assert a == b != c
