"""Meter profiles: the field quirks of the meters patients actually own.

- ``contour``: keeps UTC as base time and sends the zone as the time offset
  (user-facing time = base + offset), with context records (meal markers).
- ``accu_chek``: local base time, no offset; drops the BLE link when a strip is inserted.
- ``no_context``: a basic meter that never sends Measurement Context records.
- ``cts``: exposes its clock through the Current Time Service (0x1805 / 0x2A2B).

A profile is a preset; tests combine quirks with :func:`dataclasses.replace`.
"""

from __future__ import annotations

from dataclasses import dataclass

from device.gls import Feature, SampleType
from firmware_sim.memory import DEFAULT_CAPACITY


@dataclass(frozen=True)
class MeterProfile:
    key: str
    manufacturer: str
    model: str
    name_prefix: str  # the advertised local name starts with it, as on real meters
    capacity: int = DEFAULT_CAPACITY
    utc_base_time: bool = False  # base time in UTC, zone sent as the time offset
    context_records: bool = True
    current_time_service: bool = False
    drops_link_on_strip: bool = False
    supports_delete: bool = False
    sample_type: SampleType = SampleType.CAPILLARY_PLASMA
    features: Feature = (
        Feature.LOW_BATTERY_DETECTION
        | Feature.SENSOR_MALFUNCTION_DETECTION
        | Feature.SENSOR_STRIP_INSERTION_ERROR_DETECTION
        | Feature.SENSOR_RESULT_HIGH_LOW_DETECTION
    )
    # Real meters show a fresh 6-digit passkey each pairing; None pairs "just works".
    passkey_pairing: bool = True


CONTOUR = MeterProfile(
    key="contour",
    manufacturer="Ascensia-like",
    model="Contour-like Next One",
    name_prefix="Contour",
    capacity=800,
    utc_base_time=True,
)
ACCU_CHEK = MeterProfile(
    key="accu_chek",
    manufacturer="Roche-like",
    model="Accu-Chek-like Guide",
    name_prefix="meter+",
    capacity=720,
    drops_link_on_strip=True,
    sample_type=SampleType.CAPILLARY_WHOLE_BLOOD,
)
NO_CONTEXT = MeterProfile(
    key="no_context",
    manufacturer="Generic",
    model="Basic BLE meter",
    name_prefix="GlucoMeter",
    capacity=500,
    context_records=False,
)
CTS = MeterProfile(
    key="cts",
    manufacturer="Generic",
    model="Meter with clock service",
    name_prefix="GlucoClock",
    capacity=1000,
    current_time_service=True,
)

PROFILES = {p.key: p for p in (CONTOUR, ACCU_CHEK, NO_CONTEXT, CTS)}
