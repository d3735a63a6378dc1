"""`POST [base]/$submit-cgm-bundle` (CGM guide, OperationDefinition submit-cgm-bundle): a
data submitter sends a `cgm-data-submission-bundle` about one patient; the readings in it are
stored through the one intake (`core.intake`: the contract's validation, identities,
dedupe, dead letters), and every entry is answered, in order, in a `transaction-response`.

What is stored: sensor readings (and fingerstick or lab readings in our mapping) whose value
and time are plausible. The device is the Device entry an Observation references (its
serial number, else its first identifier), or, without one, the submitting client itself;
readings have no sequence numbers here, so a reading's identity is (patient, device,
source, time, value) and submitting the same readings again stores nothing new. Summaries,
summary PDFs, Devices and the Patient are checked against the guide and acknowledged, not
stored: this server computes summaries from the readings it holds.

The checking of entries is pure (`plan`); storing happens in `store`, off the event loop.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

import psycopg
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from api.fhir.consent import Need, admit
from api.fhir.errors import OutcomeError, invalid, outcome, respond
from api.fhir.token import CurrentClient
from api.state import settings_of
from core.contract import MeterInfo
from core.fhir_cgm import PATIENT_SYSTEM, READING_CODES, Loinc, Profile, instant
from core.fhir_conformance import (
    implied_profile,
    loinc_codes,
    meter_reading,
    submission_bundle,
    violations,
)
from core.intake import (
    DecodedBatch,
    Rejected,
    decode_items,
    reading_identity,
    write_isolating_bad_batches,
)
from core.units import Unit
from core.vocabulary import RangeFlag, SampleType, SourceKind

router = APIRouter()

SUBMIT: Final = Need("Observation", "c", "readings")
# A month of 5-minute CGM is 8,640 readings: one submission may carry it, and its summary.
MAX_ENTRIES: Final = 10_000
# About 1 KiB per reading entry as submitters write them, with room to spare.
MAX_BODY_BYTES: Final = 16 * 1024 * 1024
TOPIC: Final = "fhir/submit-cgm-bundle"
# MeterInfo.serial holds at most 64 characters; longer device keys are hashed.
MAX_DEVICE_KEY: Final = 64
ALLOWED_TYPES: Final = ("Observation", "Device", "DiagnosticReport", "Patient")
SAMPLE_TYPE: Final = {
    SourceKind.CGM: SampleType.INTERSTITIAL_FLUID,
    SourceKind.METER: SampleType.CAPILLARY_WHOLE_BLOOD,
    SourceKind.LAB: SampleType.VENOUS_PLASMA,
}
_CODE_TO_READING: Final = {code: key for key, (code, _profile) in READING_CODES.items()}
_COMPARATOR: Final = {">": RangeFlag.ABOVE_RANGE, "<": RangeFlag.BELOW_RANGE}
_SUMMARY_PROFILES: Final = (
    Profile.SUMMARY,
    Profile.MEAN_MASS,
    Profile.MEAN_MOLES,
    Profile.TIMES_IN_RANGES,
    Profile.GMI,
    Profile.CV,
    Profile.DAYS_OF_WEAR,
    Profile.SENSOR_ACTIVE,
)
# The identifier search parameter, the only one conditional create takes here.
IF_NONE_EXIST_PARAM: Final = "identifier="


@dataclass(frozen=True)
class Answer:
    """One entry's response in the transaction-response."""

    status: str
    location: str | None = None
    outcome: dict[str, Any] | None = None

    def entry(self) -> dict[str, Any]:
        response: dict[str, Any] = {"status": self.status}
        if self.location is not None:
            response["location"] = self.location
        if self.outcome is not None:
            response["outcome"] = self.outcome
        return {"response": response}


def _refused(status: str, *problems: str) -> Answer:
    return Answer(
        status,
        outcome={
            "resourceType": "OperationOutcome",
            "issue": [{"severity": "error", "code": "invalid", "diagnostics": p} for p in problems],
        },
    )


def _acknowledged(note: str) -> Answer:
    return Answer("200 OK", outcome=outcome(note, "informational", "information"))


@dataclass
class Reading:
    """An entry that becomes a reading, if the intake agrees."""

    index: int
    item: dict[str, Any]  # what decode_items validates (core.contract.WireReading)
    meter: MeterInfo
    payload: bytes  # the entry as sent, kept with a dead letter
    if_none_exist: tuple[str, str] | None = None  # (system, value)


@dataclass
class Plan:
    answers: dict[int, Answer] = field(default_factory=dict)
    readings: list[Reading] = field(default_factory=list)


def unwrap(document: object) -> Mapping[str, Any]:
    """The Bundle, posted directly or as the operation's `resource` parameter."""
    if isinstance(document, Mapping) and document.get("resourceType") == "Parameters":
        for parameter in document.get("parameter", []):
            if isinstance(parameter, Mapping) and parameter.get("name") == "resource":
                document = parameter.get("resource")
                break
    if not isinstance(document, Mapping) or document.get("resourceType") != "Bundle":
        raise invalid("post a cgm-data-submission-bundle (a transaction Bundle)")
    return document


def _patient_id(reference: object, patients: Mapping[str, uuid.UUID]) -> uuid.UUID | None:
    if not isinstance(reference, Mapping) or not isinstance(reference.get("reference"), str):
        return None
    ref = str(reference["reference"])
    if ref in patients:
        return patients[ref]
    head, _, tail = ref.rpartition("/")
    if head.endswith("Patient") or head == "Patient":
        try:
            return uuid.UUID(tail)
        except ValueError:
            return None
    return None


def _bundle_patients(entries: Sequence[Mapping[str, Any]]) -> dict[str, uuid.UUID]:
    """Patient entries of the bundle (fullUrl -> our patient id, by id or our identifier)."""
    found = {}
    for entry in entries:
        resource = entry.get("resource")
        if not isinstance(resource, Mapping) or resource.get("resourceType") != "Patient":
            continue
        candidates = [resource.get("id")] + [
            i.get("value")
            for i in resource.get("identifier", [])
            if isinstance(i, Mapping) and i.get("system") == PATIENT_SYSTEM
        ]
        for candidate in candidates:
            try:
                patient = uuid.UUID(str(candidate))
            except ValueError:
                continue
            if entry.get("fullUrl"):
                found[str(entry["fullUrl"])] = patient
            found[f"Patient/{patient}"] = patient
            break
    return found


def subject_of(resource: Mapping[str, Any], patients: Mapping[str, uuid.UUID]) -> uuid.UUID | None:
    key = "patient" if resource.get("resourceType") == "Device" else "subject"
    return _patient_id(resource.get(key), patients)


def the_patient(entries: Sequence[Mapping[str, Any]]) -> uuid.UUID:
    """The one patient the submission is about (every subject must name them)."""
    patients = _bundle_patients(entries)
    named = set(patients.values())
    for entry in entries:
        resource = entry.get("resource")
        if isinstance(resource, Mapping):
            found = subject_of(resource, patients)
            if found is not None:
                named.add(found)
    if not named:
        raise invalid("no entry names its patient (subject: Patient/{id} of this server)")
    if len(named) > 1:
        raise invalid("a submission is about one patient; this one names several")
    return named.pop()


def _device_key(resource: Mapping[str, Any]) -> str | None:
    serial = resource.get("serialNumber")
    if isinstance(serial, str) and serial:
        return serial
    for identifier in resource.get("identifier", []):
        if isinstance(identifier, Mapping) and identifier.get("value"):
            system = identifier.get("system")
            return f"{system}|{identifier['value']}" if system else str(identifier["value"])
    return None


def _meter(resource: Mapping[str, Any] | None, fallback: str) -> MeterInfo:
    key = (_device_key(resource) if resource is not None else None) or fallback
    if len(key) > MAX_DEVICE_KEY:
        key = "fhir-" + hashlib.sha256(key.encode()).hexdigest()[:32]
    if resource is None:
        return MeterInfo(serial=key)
    names = [
        str(n.get("name"))
        for n in resource.get("deviceName", [])
        if isinstance(n, Mapping) and n.get("name")
    ]
    manufacturer = resource.get("manufacturer")
    return MeterInfo(
        serial=key,
        manufacturer=str(manufacturer) if manufacturer else None,
        model=names[0] if names else None,
    )


def _if_none_exist(request: Mapping[str, Any]) -> tuple[str, str] | Answer | None:
    condition = request.get("ifNoneExist")
    if condition is None:
        return None
    text = str(condition)
    if not text.startswith(IF_NONE_EXIST_PARAM) or "&" in text:
        return _refused("400 Bad Request", "ifNoneExist supports identifier=system|value only")
    system, bar, value = text[len(IF_NONE_EXIST_PARAM) :].partition("|")
    if not bar or not value:
        return _refused("400 Bad Request", "ifNoneExist needs identifier=system|value")
    return system, value


def _reading_item(
    resource: Mapping[str, Any], source: SourceKind, unit: Unit
) -> dict[str, Any] | Answer:
    value = resource.get("valueQuantity")
    if not isinstance(value, Mapping) or value.get("value") is None:
        return _refused("422 Unprocessable Entity", "no value (dataAbsentReason): nothing to store")
    measured_at = datetime.fromisoformat(str(resource["effectiveDateTime"]).replace("Z", "+00:00"))
    item: dict[str, Any] = {
        # Submitted readings carry no meter clock: the instant, in UTC, stands for it, so
        # the same reading written with another offset is still the same reading.
        "meter_time": measured_at.astimezone(UTC).replace(tzinfo=None).isoformat(),
        "measured_at": measured_at.isoformat(),
        "value": value["value"],
        "unit": unit.value,
        "source": source.value,
        "sample_type": SAMPLE_TYPE[source].value,
    }
    flag = _COMPARATOR.get(str(value.get("comparator")))
    if flag is not None:
        item["range_flag"] = flag.value
    identifiers = [
        {"system": str(i["system"]), "value": str(i["value"])}
        for i in resource.get("identifier", [])
        if isinstance(i, Mapping) and i.get("system") and i.get("value")
    ]
    if identifiers:
        item["context"] = {"fhir_identifier": identifiers}
    return item


def plan(entries: Sequence[object], patient_id: uuid.UUID, client_id: uuid.UUID) -> Plan:
    """Check every entry; say which become readings and answer the others now."""
    found = Plan()
    typed = [e for e in entries if isinstance(e, Mapping)]
    patients = _bundle_patients(typed)
    devices: dict[str, Mapping[str, Any]] = {}
    for entry in typed:
        resource = entry.get("resource")
        if isinstance(resource, Mapping) and resource.get("resourceType") == "Device":
            if entry.get("fullUrl"):
                devices[str(entry["fullUrl"])] = resource
            if resource.get("id"):
                devices[f"Device/{resource['id']}"] = resource
    only_device = (
        next(iter(devices.values())) if len({id(d) for d in devices.values()}) == 1 else None
    )
    members: dict[str, Mapping[str, Any]] = {}
    for entry in typed:
        resource = entry.get("resource")
        if isinstance(resource, Mapping) and resource.get("resourceType") == "Observation":
            if entry.get("fullUrl"):
                members[str(entry["fullUrl"])] = resource
            if resource.get("id"):
                members[f"Observation/{resource['id']}"] = resource
    fallback = f"fhir-client-{client_id}"
    for index, item in enumerate(entries):
        answer = _entry(
            index, item, patient_id, patients, devices, only_device, members, fallback, found
        )
        if answer is not None:
            found.answers[index] = answer
    return found


def _entry(
    index: int,
    entry: object,
    patient_id: uuid.UUID,
    patients: Mapping[str, uuid.UUID],
    devices: Mapping[str, Mapping[str, Any]],
    only_device: Mapping[str, Any] | None,
    members: Mapping[str, Mapping[str, Any]],
    fallback: str,
    found: Plan,
) -> Answer | None:
    if not isinstance(entry, Mapping) or not isinstance(entry.get("resource"), Mapping):
        return _refused("400 Bad Request", "an entry holds a resource")
    resource: Mapping[str, Any] = entry["resource"]
    request = entry.get("request")
    if not isinstance(request, Mapping) or request.get("method") != "POST":
        return _refused("400 Bad Request", "only POST entries are accepted")
    kind = resource.get("resourceType")
    if kind not in ALLOWED_TYPES:
        return _refused("400 Bad Request", f"{kind} is not a CGM resource this server accepts")
    if kind == "Patient":
        if patient_id not in patients.values():
            return _refused("400 Bad Request", "this Patient is not the patient of the submission")
        return _acknowledged("the patient is known here; nothing stored")
    subject = subject_of(resource, patients)
    # A cgm-device need not name its patient (Device.patient is optional); all else must.
    named_other = subject is not None and subject != patient_id
    if named_other or (subject is None and kind != "Device"):
        return _refused("400 Bad Request", "subject must be the patient of the submission")
    if kind == "Device":
        problems = violations(resource, Profile.DEVICE)
        if problems:
            return _refused("400 Bad Request", *problems)
        return _acknowledged("recorded as the device of the readings that reference it")
    profile = implied_profile(resource)
    if kind == "DiagnosticReport":
        problems = (
            violations(resource, Profile.SUMMARY_PDF) if profile else ["not a cgm-summary-pdf"]
        )
        if problems:
            return _refused("400 Bad Request", *problems)
        return _acknowledged("not stored: the summary report is computed here from the readings")
    if profile in _SUMMARY_PROFILES:
        assert profile is not None
        problems = violations(resource, profile, members if profile is Profile.SUMMARY else None)
        if problems:
            return _refused("400 Bad Request", *problems)
        return _acknowledged("not stored: summaries are computed here from the readings")
    codes = [c for c in loinc_codes(resource) if c in _CODE_TO_READING]
    if not codes:
        return _refused(
            "400 Bad Request", f"no CGM or glucose reading code in {loinc_codes(resource)}"
        )
    source, unit = _CODE_TO_READING[Loinc(codes[0])]
    problems = violations(resource, profile) if profile is not None else meter_reading(resource)
    if problems:
        return _refused("400 Bad Request", *problems)
    condition = _if_none_exist(request)
    if isinstance(condition, Answer):
        return condition
    item = _reading_item(resource, source, unit)
    if isinstance(item, Answer):
        return item
    reference = resource.get("device")
    device = None
    if isinstance(reference, Mapping) and reference.get("reference"):
        device = devices.get(str(reference["reference"]))
    elif only_device is not None:
        device = only_device
    payload = json.dumps(entry, default=str).encode()
    found.readings.append(Reading(index, item, _meter(device, fallback), payload, condition))
    return None


# -- storing -------------------------------------------------------------------------------

# Readings of this patient carrying a client-supplied identifier (ifNoneExist).
_IDENTIFIED = """
SELECT e ->> 'system', e ->> 'value', r.identity
FROM counted_readings r
CROSS JOIN LATERAL jsonb_array_elements(r.context -> 'fhir_identifier') e
WHERE r.patient_id = %(patient)s AND r.context ? 'fhir_identifier'
  AND (e ->> 'system') || '|' || (e ->> 'value') = ANY (%(keys)s)
"""


def store(
    database_url: str, patient_id: uuid.UUID, client_id: uuid.UUID, readings: list[Reading]
) -> dict[int, Answer]:
    """Conditional creates first, then one write of every other reading through the intake."""
    answers: dict[int, Answer] = {}
    with psycopg.connect(database_url) as conn:
        keys = sorted(
            {f"{r.if_none_exist[0]}|{r.if_none_exist[1]}" for r in readings if r.if_none_exist}
        )
        held: dict[str, list[uuid.UUID]] = {}
        if keys:
            for system, value, identity in conn.execute(
                _IDENTIFIED, {"patient": patient_id, "keys": keys}
            ):
                assert isinstance(identity, uuid.UUID)
                held.setdefault(f"{system}|{value}", []).append(identity)
            conn.commit()
        batches: dict[uuid.UUID, tuple[Reading, DecodedBatch]] = {}
        rejected: list[Rejected] = []
        for reading in readings:
            if reading.if_none_exist is not None:
                matches = held.get(f"{reading.if_none_exist[0]}|{reading.if_none_exist[1]}", [])
                if len(matches) == 1:
                    answers[reading.index] = Answer("200 OK", f"Observation/{matches[0]}")
                    continue
                if len(matches) > 1:
                    answers[reading.index] = _refused(
                        "412 Precondition Failed", "several readings carry that identifier"
                    )
                    continue
            decoded = decode_items(
                TOPIC,
                reading.payload,
                f"fhir:{client_id}",
                uuid.uuid4(),
                reading.meter,
                [reading.item],
                patient_id=patient_id,
                claims_device=True,
            )
            if decoded.rejected:
                # Kept as a dead letter with the patient, by the write below.
                answers[reading.index] = _refused(
                    "422 Unprocessable Entity", decoded.rejected[0].reason
                )
                rejected.extend(decoded.rejected)
            else:
                batches[decoded.batch_id] = (reading, decoded)
        outcomes = write_isolating_bad_batches(conn, [d for _, d in batches.values()], rejected)
    for result in outcomes:
        if result.batch_id not in batches:
            continue  # the dead letters' own outcome
        reading, decoded = batches[result.batch_id]
        wire = decoded.readings[0]
        identity = reading_identity(
            patient_id, reading.meter.serial, wire.source_kind, None, wire.meter_time, wire.value
        )
        if result.stored:
            answers[reading.index] = Answer("201 Created", f"Observation/{identity}")
        elif result.duplicates:
            answers[reading.index] = Answer("200 OK", f"Observation/{identity}")
        else:
            answers[reading.index] = _refused(
                "422 Unprocessable Entity", "the database refused the reading; it is kept aside"
            )
    return answers


@router.post(
    "/$submit-cgm-bundle",
    summary="Submit CGM readings and summaries for one patient (CGM guide operation)",
)
async def submit_cgm_bundle(request: Request, caller: CurrentClient) -> JSONResponse:
    body = await request.body()
    if len(body) > MAX_BODY_BYTES:
        raise OutcomeError(413, f"at most {MAX_BODY_BYTES // 2**20} MiB per submission")
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise invalid(f"the body is not JSON: {exc}") from exc
    bundle = unwrap(document)
    problems = submission_bundle(bundle)
    if problems:
        raise invalid("; ".join(problems))
    entries = list(bundle["entry"])
    if len(entries) > MAX_ENTRIES:
        raise OutcomeError(413, f"at most {MAX_ENTRIES} entries per submission")
    patient_id = the_patient([e for e in entries if isinstance(e, Mapping)])
    await admit(request, caller, patient_id, SUBMIT, "fhir_submit_cgm_bundle")
    checked = plan(entries, patient_id, caller.client_id)
    stored = await asyncio.to_thread(
        store, settings_of(request).database_url, patient_id, caller.client_id, checked.readings
    )
    answers = {**checked.answers, **stored}
    return respond(
        200,
        {
            "resourceType": "Bundle",
            "type": "transaction-response",
            "timestamp": instant(datetime.now(UTC)),
            "entry": [answers[i].entry() for i in range(len(entries))],
        },
    )
