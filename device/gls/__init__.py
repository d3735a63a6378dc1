"""Bluetooth Glucose Profile codec, sans I/O: bytes in, frozen values out, and back.

Records: :class:`GlucoseMeasurement` (0x2A18), :class:`GlucoseMeasurementContext` (0x2A34),
:class:`GlucoseFeature` (0x2A51) and the Record Access Control Point (0x2A52) values
:class:`RacpRequest`, :class:`RacpNumberOfRecords`, :class:`RacpResponse`. Each has
``from_bytes()`` and ``__bytes__()``, and ``bytes(X.from_bytes(b)) == b`` for every valid ``b``.
Every decoding failure is a :class:`GlsError`.
"""

from device.gls.codes import (
    CarbohydrateId,
    Health,
    Meal,
    MedicationId,
    MedicationUnit,
    SampleLocation,
    SampleType,
    Tester,
)
from device.gls.concentration import (
    ConcentrationUnit,
    kg_per_l_from_mg_dl,
    mol_per_l_from_mmol_l,
    to_mg_dl,
    to_mmol_l,
)
from device.gls.context import ContextFlags, GlucoseMeasurementContext
from device.gls.date_time import DateTime
from device.gls.errors import (
    GlsError,
    InconsistentFieldsError,
    LengthError,
    NotRepresentableError,
    OutOfRangeError,
    RacpRequestError,
    ReservedValueError,
    UnknownDateTimeError,
)
from device.gls.feature import Feature, GlucoseFeature
from device.gls.measurement import GlucoseMeasurement, MeasurementFlags, SensorStatus
from device.gls.racp import (
    FilterType,
    OpCode,
    Operator,
    RacpNumberOfRecords,
    RacpRequest,
    RacpResponse,
    RacpValue,
    RecordFilter,
    ResponseCode,
    SequenceNumberFilter,
    UserFacingTimeFilter,
    decode_racp,
)
from device.gls.sfloat import SFloat, SFloatSpecial

__all__ = [
    "CarbohydrateId",
    "ConcentrationUnit",
    "ContextFlags",
    "DateTime",
    "Feature",
    "FilterType",
    "GlsError",
    "GlucoseFeature",
    "GlucoseMeasurement",
    "GlucoseMeasurementContext",
    "Health",
    "InconsistentFieldsError",
    "LengthError",
    "Meal",
    "MeasurementFlags",
    "MedicationId",
    "MedicationUnit",
    "NotRepresentableError",
    "OpCode",
    "Operator",
    "OutOfRangeError",
    "RacpNumberOfRecords",
    "RacpRequest",
    "RacpRequestError",
    "RacpResponse",
    "RacpValue",
    "RecordFilter",
    "ReservedValueError",
    "ResponseCode",
    "SFloat",
    "SFloatSpecial",
    "SampleLocation",
    "SampleType",
    "SensorStatus",
    "SequenceNumberFilter",
    "Tester",
    "UnknownDateTimeError",
    "UserFacingTimeFilter",
    "decode_racp",
    "kg_per_l_from_mg_dl",
    "mol_per_l_from_mmol_l",
    "to_mg_dl",
    "to_mmol_l",
]
