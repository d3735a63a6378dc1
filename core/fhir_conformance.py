"""What the HL7 CGM guide requires of a resource and a generic FHIR parser does not check:
profile URLs, LOINC codes, UCUM units, fixed Quantities, the summary's member slices,
`effectivePeriod`, the guide's invariant `cgm-sensor-value-or-dar`. Pure: dicts in, a list of
violations (human-readable) out; an empty list means the resource conforms.

Rules are read from the guide's source, github.com/HL7/cgm input/fsh/profiles.fsh (1.0.0).
The server checks what clients submit with these rules; the tests check what the server
returns with them, beside `fhir.resources`' structural parse.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Final

from core.fhir_cgm import (
    DAYS,
    DEVICE_NAME_TYPE,
    LOINC,
    PDF,
    PERCENT,
    QUANTITY,
    RANGE_COMPONENTS,
    UCUM,
    UNPROFILED_READINGS,
    Loinc,
    Profile,
)
from core.units import Unit

# FHIR dateTime (R4 datatypes): a date, or a date and time with its zone.
_DATE_TIME = re.compile(
    r"^\d{4}(-\d{2}(-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2}))?)?)?$"
)
_FULL_INSTANT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
# Percentages may carry rounding noise of a few ulps above 100.
PERCENT_TOLERANCE = 1e-6
# The five times in ranges add up to the whole period, give or take rounding.
RANGES_SUM_TOLERANCE = 0.01

# Which profile a resource claims through its code (submitters need not send meta.profile).
_OBSERVATION_PROFILES: Final = {
    Loinc.SENSOR_MASS: Profile.SENSOR_MASS,
    Loinc.SENSOR_MOLES: Profile.SENSOR_MOLES,
    Loinc.SUMMARY: Profile.SUMMARY,
    Loinc.MEAN_MASS: Profile.MEAN_MASS,
    Loinc.MEAN_MOLES: Profile.MEAN_MOLES,
    Loinc.TIMES_IN_RANGES: Profile.TIMES_IN_RANGES,
    Loinc.GMI: Profile.GMI,
    Loinc.CV: Profile.CV,
    Loinc.DAYS_OF_WEAR: Profile.DAYS_OF_WEAR,
    Loinc.SENSOR_ACTIVE: Profile.SENSOR_ACTIVE,
}
PROFILE_CODE: Final = {profile: code for code, profile in _OBSERVATION_PROFILES.items()}
SENSOR_UNIT: Final = {Profile.SENSOR_MASS: Unit.MG_DL, Profile.SENSOR_MOLES: Unit.MMOL_L}
MEAN_UNIT: Final = {Profile.MEAN_MASS: Unit.MG_DL, Profile.MEAN_MOLES: Unit.MMOL_L}
# Our meter (and lab) mapping, which the guide does not cover: code -> unit measured.
METER_UNIT: Final = {code: unit for code, (_, unit) in UNPROFILED_READINGS.items()}
# Percent-valued members (the guide's QuantityPercent rule set).
_PERCENT_PROFILES: Final = (Profile.GMI, Profile.CV, Profile.SENSOR_ACTIVE)
# cgm-summary.hasMember slices: (profile, min, max); the slicing is open.
SUMMARY_SLICES: Final = (
    (Profile.MEAN_MASS, 0, 1),
    (Profile.MEAN_MOLES, 0, 1),
    (Profile.TIMES_IN_RANGES, 1, 1),
    (Profile.GMI, 1, 1),
    (Profile.CV, 1, 1),
    (Profile.DAYS_OF_WEAR, 1, 1),
    (Profile.SENSOR_ACTIVE, 1, 1),
)
SUMMARY_MIN_MEMBERS = 6
_VALUE_X = (
    "valueCodeableConcept",
    "valueString",
    "valueBoolean",
    "valueInteger",
    "valueRange",
    "valueRatio",
    "valueSampledData",
    "valueTime",
    "valueDateTime",
    "valuePeriod",
)


def loinc_codes(resource: Mapping[str, Any]) -> list[str]:
    code = resource.get("code")
    codings = code.get("coding", []) if isinstance(code, Mapping) else []
    return [
        str(c.get("code"))
        for c in codings
        if isinstance(c, Mapping) and c.get("system") == LOINC and c.get("code")
    ]


def implied_profile(resource: Mapping[str, Any]) -> Profile | None:
    """The guide's profile a resource is, judged by its type and LOINC code."""
    kind = resource.get("resourceType")
    codes = loinc_codes(resource)
    if kind == "Observation":
        for code in codes:
            if code in _OBSERVATION_PROFILES:
                return _OBSERVATION_PROFILES[Loinc(code)]
    if kind == "DiagnosticReport" and Loinc.SUMMARY in codes:
        return Profile.SUMMARY_PDF
    return None


def is_date_time(value: object) -> bool:
    return isinstance(value, str) and _DATE_TIME.match(value) is not None


def _parse(value: str) -> datetime | None:
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _quantity(
    found: object, fixed: tuple[str, str], where: str, *, required: bool = True
) -> list[str]:
    if found is None:
        return [f"{where}: missing"] if required else []
    if not isinstance(found, Mapping):
        return [f"{where}: not a Quantity"]
    code, unit = fixed
    problems = []
    if found.get("system") != UCUM:
        problems.append(f"{where}.system: {found.get('system')!r}, the guide fixes {UCUM}")
    if found.get("code") != code:
        problems.append(f"{where}.code: {found.get('code')!r}, the guide fixes UCUM {code!r}")
    if found.get("unit") != unit:
        problems.append(f"{where}.unit: {found.get('unit')!r}, the guide fixes {unit!r}")
    value = found.get("value")
    if not isinstance(value, int | float) or isinstance(value, bool):
        problems.append(f"{where}.value: not a number")
    elif fixed == PERCENT and not -PERCENT_TOLERANCE <= value <= 100 + PERCENT_TOLERANCE:
        problems.append(f"{where}.value: {value} is not a percentage")
    return problems


def _subject(resource: Mapping[str, Any]) -> list[str]:
    subject = resource.get("subject")
    if not isinstance(subject, Mapping) or not subject.get("reference"):
        return ["subject: the guide requires the patient (subject 1..1)"]
    return []


def _status(resource: Mapping[str, Any]) -> list[str]:
    return [] if resource.get("status") else ["status: missing (FHIR requires it)"]


def _code(resource: Mapping[str, Any], code: str) -> list[str]:
    if code not in loinc_codes(resource):
        return [f"code: LOINC {code} required, found {loinc_codes(resource) or 'none'}"]
    return []


def _period(resource: Mapping[str, Any]) -> list[str]:
    period = resource.get("effectivePeriod")
    if not isinstance(period, Mapping):
        return ["effectivePeriod: the guide requires the reporting period (1..1)"]
    problems = []
    bounds = {}
    for key in ("start", "end"):
        value = period.get(key)
        if not is_date_time(value):
            problems.append(f"effectivePeriod.{key}: missing or not a dateTime ({value!r})")
        else:
            bounds[key] = _parse(str(value))
    start, end = bounds.get("start"), bounds.get("end")
    if start is not None and end is not None and start.tzinfo and end.tzinfo and end < start:
        problems.append("effectivePeriod: end is before start")
    return problems


def _single_value(resource: Mapping[str, Any]) -> list[str]:
    others = [k for k in _VALUE_X if k in resource]
    return [f"{k}: value[x] is only Quantity in this profile" for k in others]


def _reading(resource: Mapping[str, Any], code: str, unit: Unit) -> list[str]:
    problems = _status(resource) + _subject(resource) + _code(resource, code)
    problems += _single_value(resource)
    effective = resource.get("effectiveDateTime")
    if not isinstance(effective, str) or not _FULL_INSTANT.match(effective):
        problems.append(
            "effectiveDateTime: the time of the reading, with its zone, is required"
            f" ({effective!r})"
        )
    value = resource.get("valueQuantity")
    if value is None and resource.get("dataAbsentReason") is None:
        problems.append(
            "cgm-sensor-value-or-dar: a reading needs valueQuantity or dataAbsentReason"
        )
    problems += _quantity(value, QUANTITY[unit], "valueQuantity", required=False)
    if isinstance(value, Mapping) and value.get("comparator") not in (None, "<", ">"):
        problems.append(f"valueQuantity.comparator: {value.get('comparator')!r} (< or > only)")
    return problems


def _summary_member(resource: Mapping[str, Any], profile: Profile) -> list[str]:
    problems = _status(resource) + _subject(resource) + _code(resource, PROFILE_CODE[profile])
    problems += _period(resource) + _single_value(resource)
    if profile in MEAN_UNIT:
        problems += _quantity(
            resource.get("valueQuantity"), QUANTITY[MEAN_UNIT[profile]], "valueQuantity"
        )
    elif profile in _PERCENT_PROFILES:
        problems += _quantity(resource.get("valueQuantity"), PERCENT, "valueQuantity")
    elif profile is Profile.DAYS_OF_WEAR:
        problems += _quantity(resource.get("valueQuantity"), DAYS, "valueQuantity")
    elif profile is Profile.TIMES_IN_RANGES:
        problems += _ranges(resource)
    return problems


def _ranges(resource: Mapping[str, Any]) -> list[str]:
    problems: list[str] = []
    components = resource.get("component")
    if not isinstance(components, list):
        return ["component: the five times in ranges are required"]
    shares = []
    for code in RANGE_COMPONENTS:
        matching = [c for c in components if isinstance(c, Mapping) and code in loinc_codes(c)]
        if len(matching) != 1:
            problems.append(f"component[{code}]: exactly one required, found {len(matching)}")
            continue
        value = matching[0].get("valueQuantity")
        found = _quantity(value, PERCENT, f"component[{code}].valueQuantity")
        problems += found
        if not found and isinstance(value, Mapping):
            shares.append(float(value["value"]))
    if len(shares) == len(RANGE_COMPONENTS) and abs(sum(shares) - 100) > RANGES_SUM_TOLERANCE:
        problems.append(f"component: the five times in ranges add up to {sum(shares)}, not 100")
    return problems


def _summary(
    resource: Mapping[str, Any], members: Mapping[str, Mapping[str, Any]] | None
) -> list[str]:
    problems = _status(resource) + _subject(resource) + _code(resource, Loinc.SUMMARY)
    problems += _period(resource)
    refs = [
        str(m.get("reference"))
        for m in resource.get("hasMember", [])
        if isinstance(m, Mapping) and m.get("reference")
    ]
    if len(refs) < SUMMARY_MIN_MEMBERS:
        problems.append(f"hasMember: at least {SUMMARY_MIN_MEMBERS} required, found {len(refs)}")
    if members is None:
        return problems
    resolved = []
    for ref in refs:
        member = members.get(ref)
        if member is None:
            problems.append(f"hasMember {ref}: does not resolve")
        else:
            resolved.append(implied_profile(member))
    for profile, low, high in SUMMARY_SLICES:
        count = resolved.count(profile)
        if not low <= count <= high:
            problems.append(f"hasMember[{profile.rsplit('/', 1)[-1]}]: {count}, not {low}..{high}")
    return problems


def _pdf_report(resource: Mapping[str, Any]) -> list[str]:
    problems = _status(resource) + _subject(resource) + _code(resource, Loinc.SUMMARY)
    problems += _period(resource)
    forms = [
        f
        for f in resource.get("presentedForm", [])
        if isinstance(f, Mapping) and f.get("contentType") == PDF
    ]
    if not forms:
        problems.append("presentedForm[cgmSummaryPDF]: a PDF is required (1..*)")
    for form in forms:
        try:
            data = base64.b64decode(str(form.get("data", "")), validate=True)
        except (binascii.Error, ValueError):
            problems.append("presentedForm.data: not base64")
            continue
        if not data.startswith(b"%PDF-"):
            problems.append("presentedForm.data: not a PDF document")
    return problems


def _device(resource: Mapping[str, Any]) -> list[str]:
    problems = []
    names = [
        n
        for n in resource.get("deviceName", [])
        if isinstance(n, Mapping) and n.get("type") == DEVICE_NAME_TYPE
    ]
    if len(names) != 1 or not names[0].get("name"):
        problems.append("deviceName[cgmDeviceName]: one user-friendly-name with a name required")
    identifiers = resource.get("identifier")
    if not isinstance(identifiers, list) or not identifiers:
        problems.append("identifier: at least one required (1..*)")
    return problems


def violations(
    resource: Mapping[str, Any],
    profile: Profile,
    members: Mapping[str, Mapping[str, Any]] | None = None,
) -> list[str]:
    """What keeps `resource` from conforming to `profile`. A summary's members are checked
    when `members` maps its hasMember references to the resources they name."""
    kind = resource.get("resourceType")
    expected = {
        Profile.SUMMARY_PDF: "DiagnosticReport",
        Profile.DEVICE: "Device",
        Profile.SUBMISSION_BUNDLE: "Bundle",
    }.get(profile, "Observation")
    if kind != expected:
        return [f"resourceType: {kind!r}, the profile is on {expected}"]
    if profile in SENSOR_UNIT:
        return _reading(resource, PROFILE_CODE[profile], SENSOR_UNIT[profile])
    if profile is Profile.SUMMARY:
        return _summary(resource, members)
    if profile is Profile.SUMMARY_PDF:
        return _pdf_report(resource)
    if profile is Profile.DEVICE:
        return _device(resource)
    if profile is Profile.SUBMISSION_BUNDLE:
        return submission_bundle(resource)
    return _summary_member(resource, profile)


def meter_reading(resource: Mapping[str, Any]) -> list[str]:
    """Our meter mapping: LOINC 41653-7 in mg/dL or 14743-9 in mmol/L (lab: 2345-7 /
    14749-6)."""
    codes = [c for c in loinc_codes(resource) if c in METER_UNIT]
    if resource.get("resourceType") != "Observation" or not codes:
        return ["not a meter or lab reading (LOINC 41653-7, 14743-9, 2345-7, 14749-6)"]
    code = Loinc(codes[0])
    return _reading(resource, code, METER_UNIT[code])


def declared(resource: Mapping[str, Any]) -> list[str]:
    """meta.profile as written."""
    meta = resource.get("meta")
    profiles = meta.get("profile", []) if isinstance(meta, Mapping) else []
    return [str(p) for p in profiles]


def returned(
    resource: Mapping[str, Any], members: Mapping[str, Mapping[str, Any]] | None = None
) -> list[str]:
    """A resource this server returns: it names its profile in meta.profile, that profile is
    the one its code implies, and it conforms to it. Meter readings follow our mapping."""
    if loinc_codes(resource) and set(loinc_codes(resource)) <= set(METER_UNIT):
        return meter_reading(resource) + [
            f"meta.profile: {p} on a meter reading" for p in declared(resource)
        ]
    profile = implied_profile(resource)
    if resource.get("resourceType") == "Device" and Profile.DEVICE.value in declared(resource):
        profile = Profile.DEVICE
    if profile is None:
        return [f"no CGM profile for this {resource.get('resourceType')} ({loinc_codes(resource)})"]
    problems = []
    if profile.value not in declared(resource):
        problems.append(f"meta.profile: {declared(resource)} lacks {profile.value}")
    return problems + violations(resource, profile, members)


def submission_bundle(bundle: Mapping[str, Any]) -> list[str]:
    """The `cgm-data-submission-bundle` profile on the Bundle itself (its entries are
    checked one by one by the receiver, which may accept a subset)."""
    problems = []
    if bundle.get("type") != "transaction":
        problems.append(f"type: {bundle.get('type')!r}, the guide requires 'transaction'")
    if not is_date_time(bundle.get("timestamp")):
        problems.append("timestamp: required (1..1)")
    entries = bundle.get("entry")
    if not isinstance(entries, Sequence) or not entries:
        problems.append("entry: at least one required (1..*)")
    return problems
