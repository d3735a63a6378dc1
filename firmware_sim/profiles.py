"""Meter profiles: the field quirks and the RACP operator sets of the meters patients own.

Operator sets (what "report stored records" and "report number of stored records" accept;
anything else is answered "operator not supported", 0x04):

- full: every operator of GLS 1.0 (all, <=, >=, within range, first, last);
- ``nordic``: all, >=, first, last, as Nordic's qualified nRF5 GLS server implements them
  (nRF5 SDK `components/ble/ble_services/ble_gls/ble_gls.c`, `is_request_to_be_executed`:
  <= and within range are "operator not supported");
- ``minimal``: all and >=, the two GLS requires.

Quirks:

- ``contour``: keeps UTC as base time and sends the zone as the time offset
  (user-facing time = base + offset), with context records (meal markers).
- ``accu_chek``: local base time, no offset; drops the BLE link when a strip is inserted;
  measures 10-600 mg/dL (its DIS manufacturer name is Roche's).
- ``roche``: exposes its clock as a Date Time characteristic (0x2A08) inside the Glucose
  Service instead of the Current Time Service, as field reports describe Roche meters.
- ``caresens``: now and then stamps a record with month 13 (field reports of CareSens-like
  meters); the bridge holds such a record with its reason, there being no documented
  correction.
- ``no_context``: a basic meter that never sends Measurement Context records.
- ``cts``: exposes its clock through the Current Time Service (0x1805 / 0x2A2B).

A profile is a preset; tests combine quirks with :func:`dataclasses.replace`.
"""

from __future__ import annotations

from dataclasses import dataclass

from device.gls import Feature, Operator, SampleType
from firmware_sim.memory import DEFAULT_CAPACITY

EVERY_OPERATOR = frozenset(
    {
        Operator.ALL_RECORDS,
        Operator.LESS_THAN_OR_EQUAL_TO,
        Operator.GREATER_THAN_OR_EQUAL_TO,
        Operator.WITHIN_RANGE_OF,
        Operator.FIRST_RECORD,
        Operator.LAST_RECORD,
    }
)
NORDIC_OPERATORS = frozenset(
    {
        Operator.ALL_RECORDS,
        Operator.GREATER_THAN_OR_EQUAL_TO,
        Operator.FIRST_RECORD,
        Operator.LAST_RECORD,
    }
)
REQUIRED_OPERATORS = frozenset({Operator.ALL_RECORDS, Operator.GREATER_THAN_OR_EQUAL_TO})
# Most meters measure 20-600 mg/dL and show HI / LO outside (ISO 15197 meters).
MEASURING_RANGE_MG_DL = (20, 600)


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
    clock_in_glucose_service: bool = False  # Date Time (0x2A08) in the GLS, as Roche's
    drops_link_on_strip: bool = False
    supports_delete: bool = False
    operators: frozenset[Operator] = EVERY_OPERATOR
    sample_type: SampleType = SampleType.CAPILLARY_PLASMA
    measuring_range_mg_dl: tuple[int, int] = MEASURING_RANGE_MG_DL
    # Every n-th record is stamped with month 13 (None: never).
    invalid_month_every: int | None = None
    features: Feature = (
        Feature.LOW_BATTERY_DETECTION
        | Feature.SENSOR_MALFUNCTION_DETECTION
        | Feature.SENSOR_STRIP_INSERTION_ERROR_DETECTION
        | Feature.SENSOR_RESULT_HIGH_LOW_DETECTION
    )
    # Real meters show a fresh 6-digit passkey each pairing and require MITM protection;
    # False pairs "just works".
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
    measuring_range_mg_dl=(10, 600),
)
ROCHE = MeterProfile(
    key="roche",
    manufacturer="Roche-like",
    model="Accu-Chek-like Instant",
    name_prefix="meter+",
    capacity=720,
    clock_in_glucose_service=True,
    sample_type=SampleType.CAPILLARY_WHOLE_BLOOD,
    measuring_range_mg_dl=(10, 600),
)
CARESENS = MeterProfile(
    key="caresens",
    manufacturer="i-SENS-like",
    model="CareSens-like N Premier",
    name_prefix="CareSens",
    capacity=1000,
    invalid_month_every=25,
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
NORDIC = MeterProfile(
    key="nordic",
    manufacturer="Nordic-like",
    model="nRF5 GLS example",
    name_prefix="Nordic_GLS",
    capacity=1000,
    operators=NORDIC_OPERATORS,
    context_records=False,  # ble_gls.c sends no context records
)
MINIMAL = MeterProfile(
    key="minimal",
    manufacturer="Generic",
    model="Minimal RACP meter",
    name_prefix="GlucoMin",
    capacity=1000,
    operators=REQUIRED_OPERATORS,
)

PROFILES = {
    p.key: p for p in (CONTOUR, ACCU_CHEK, ROCHE, CARESENS, NO_CONTEXT, CTS, NORDIC, MINIMAL)
}
