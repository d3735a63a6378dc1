"""The patient's whole record in one zip: what `POST /patients/{id}/archive` builds.

Each file is one part of the record, described in the archive's own README.md. Readings come
twice: every stored reading as CSV (control tests, readings of unclaimed meters and the
patient's marks included, with what counts flagged), and what counts as a FHIR R4 Bundle.
Secrets (webhook signing keys, uploader and token hashes) are left out: they are the
service's, and a copy in a download would only be a copy to lose.
"""

from __future__ import annotations

import csv
import io
import json
import uuid
import zipfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from psycopg import AsyncConnection

from api.exports import counted_rows
from core.fhir import bundle


@dataclass(frozen=True)
class Part:
    name: str
    describes: str
    query: str  # one row, one column: a JSON array (or object) of the patient's rows


def _rows(table_sql: str, order: str, drop: tuple[str, ...] = ()) -> str:
    """A JSON array of the rows, in order, without the `drop` columns."""
    row = "to_jsonb(t)" + "".join(f" - '{column}'" for column in drop)
    return f"SELECT coalesce(jsonb_agg({row} ORDER BY {order}), '[]'::jsonb) FROM ({table_sql}) t"


PARTS: tuple[Part, ...] = (
    Part(
        "profile.json",
        "Your profile: name, time zone, account, research consent as it stands now.",
        """
        SELECT to_jsonb(t) FROM (
            SELECT p.id, p.display_name, p.timezone, p.created_at, p.research_opt_in,
                   u.email, u.display_name AS account_name, u.role,
                   u.created_at AS account_created_at
            FROM patients p LEFT JOIN users u ON u.id = p.user_id WHERE p.id = %(patient)s
        ) t
        """,
    ),
    Part(
        "annotations.json",
        "Your marks on readings (not mine, control solution, wrong time, notes), undone ones too.",
        _rows("SELECT * FROM reading_annotations WHERE patient_id = %(patient)s", "created_at"),
    ),
    Part(
        "held_records.json",
        "Records your meters held that could not become readings, with their raw bytes (hex).",
        _rows(
            "SELECT h.*, encode(h.raw_record, 'hex') AS raw_record_hex,"
            " encode(h.raw_context, 'hex') AS raw_context_hex"
            " FROM held_records h WHERE patient_id = %(patient)s",
            "id",
            drop=("raw_record", "raw_context"),  # bytea: given as hex instead
        ),
    ),
    Part(
        "set_aside.json",
        "Messages your devices or apps sent that could not be read at all, with the reason "
        "and the message as received (hex).",
        _rows(
            "SELECT id, received_at, topic, sender, reason, encode(payload, 'hex') AS payload_hex"
            " FROM dead_letters WHERE patient_id = %(patient)s",
            "id",
        ),
    ),
    Part(
        "alerts.json",
        "Alerts raised on your readings (lows, highs, a meter not synced) and who acknowledged.",
        _rows("SELECT * FROM alerts WHERE patient_id = %(patient)s", "id"),
    ),
    Part(
        "alert_thresholds.json",
        "The thresholds your alerts use, and who set them.",
        _rows("SELECT * FROM alert_thresholds WHERE patient_id = %(patient)s", "patient_id"),
    ),
    Part(
        "grants.json",
        "Everyone you shared with or who asked: scopes, status, when asked, decided, revoked.",
        _rows(
            "SELECT g.*, u.display_name AS grantee_name, u.email AS grantee_email,"
            " o.name AS grantee_organisation,"
            " (SELECT coalesce(array_agg(m.user_id), '{}') FROM grant_members m"
            "  WHERE m.grant_id = g.id) AS reached_members"
            " FROM grants g LEFT JOIN users u ON u.id = g.grantee_user_id"
            " LEFT JOIN organisations o ON o.id = g.grantee_organisation_id"
            " WHERE g.patient_id = %(patient)s",
            "created_at",
        ),
    ),
    Part(
        "access_log.json",
        "Every access to your record, allowed or refused: who, when, what, from where.",
        _rows(
            "SELECT a.*, u.display_name AS actor_name FROM audit_log a"
            " LEFT JOIN users u ON u.id = a.actor_user_id WHERE a.patient_id = %(patient)s",
            "id",
        ),
    ),
    Part(
        "meters.json",
        "Your meters and other devices: claimed, or seen by your bridges and not yet claimed.",
        _rows("SELECT * FROM meters WHERE patient_id = %(patient)s", "first_seen"),
    ),
    Part(
        "bridges.json",
        "Your home bridges (their passwords live in the broker only).",
        _rows("SELECT * FROM bridges WHERE patient_id = %(patient)s", "created_at"),
    ),
    Part(
        "home_displays.json",
        "Your home displays (bedside screens that show your alerts).",
        _rows("SELECT * FROM home_displays WHERE patient_id = %(patient)s", "created_at"),
    ),
    Part(
        "nightscout_sites.json",
        "Your Nightscout-compatible sites and their follower tokens (names and dates only).",
        _rows(
            "SELECT s.id, s.public_id, s.unit, s.created_at, s.rotated_at, s.deleted_at,"
            " (SELECT coalesce(jsonb_agg(jsonb_build_object('id', f.id, 'label', f.label,"
            "  'grant_id', f.grant_id, 'created_at', f.created_at)), '[]')"
            "  FROM nightscout_follower_tokens f WHERE f.site_id = s.id) AS follower_tokens"
            " FROM nightscout_sites s WHERE s.patient_id = %(patient)s",
            "created_at",
        ),
    ),
    Part(
        "treatments.json",
        "Meals and insulin doses your apps uploaded.",
        _rows("SELECT * FROM nightscout_treatments WHERE patient_id = %(patient)s", "1"),
    ),
    Part(
        "webhooks.json",
        "Where your alerts are sent (addresses only; the signing keys are not copied).",
        _rows(
            "SELECT id, url, created_at FROM webhook_endpoints WHERE patient_id = %(patient)s",
            "created_at",
        ),
    ),
    Part(
        "research_consent.json",
        "Each time you opted into or out of de-identified research exports.",
        _rows(
            "SELECT opted_in, changed_at, changed_by FROM research_consent_history"
            " WHERE patient_id = %(patient)s",
            "changed_at",
        ),
    ),
)

READINGS_CSV = Part(
    "readings.csv",
    "Every reading stored for you, oldest first, as it came (control tests and readings of "
    "meters you had not claimed too); `counted` says whether it counts in your numbers, "
    "`excluded` and `corrected_at` show your marks.",
    "",
)
READINGS_FHIR = Part(
    "readings.fhir.json",
    "The readings that count, as a FHIR R4 Bundle (LOINC glucose Observations), at their "
    "corrected times.",
    "",
)
CSV_COLUMNS = (
    "measured_at",
    "value",
    "unit",
    "mg_dl",
    "device",
    "source",
    "sequence_number",
    "meter_time",
    "time_offset_minutes",
    "sample_type",
    "sample_location",
    "meal",
    "carbohydrate_g",
    "range_flag",
    "control",
    "awaiting_claim",
    "excluded",
    "corrected_at",
    "counted",
    "sender",
    "received_at",
    "identity",
)
_ALL_READINGS = """
SELECT r.measured_at, r.value, r.unit, r.mg_dl, r.device, r.source, r.sequence_number,
       r.meter_time, r.time_offset_minutes, r.sample_type, r.sample_location, r.meal,
       r.carbohydrate_g, r.range_flag, r.control, r.awaiting_claim,
       coalesce(m.excluded, false), m.corrected_at,
       NOT (r.control OR r.awaiting_claim OR coalesce(m.excluded, false)),
       r.sender, r.received_at, r.identity
FROM readings r
LEFT JOIN reading_marks m ON m.identity = r.identity AND m.patient_id = r.patient_id
WHERE r.patient_id = %(patient)s
ORDER BY r.measured_at, r.identity
"""
FILES = (READINGS_CSV, READINGS_FHIR, *PARTS)


def _cell(value: object) -> object:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    return value


async def _readings_csv(conn: AsyncConnection[Any], patient: uuid.UUID) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    cur = conn.cursor()
    async for row in cur.stream(_ALL_READINGS, {"patient": patient}):
        writer.writerow([_cell(v) for v in row])
    return out.getvalue().encode()


async def _readings_fhir(conn: AsyncConnection[Any], patient: uuid.UUID) -> bytes:
    rows = await counted_rows(conn, patient, None, None)
    cur = await conn.execute("SELECT display_name FROM patients WHERE id = %s", (patient,))
    name = await cur.fetchone()
    assert name is not None
    return json.dumps(bundle(patient, name[0], rows, datetime.now(UTC)), indent=1).encode()


async def _part(conn: AsyncConnection[Any], patient: uuid.UUID, part: Part) -> bytes:
    cur = await conn.execute(part.query.encode(), {"patient": patient})
    row = await cur.fetchone()
    return json.dumps(None if row is None else row[0], indent=1, ensure_ascii=False).encode()


def readme(patient: uuid.UUID, built_at: datetime) -> bytes:
    lines = [
        "# Your glucobridge record",
        "",
        f"Patient {patient}, built {built_at.isoformat()}. Times are UTC (ISO 8601);",
        "JSON files hold the rows of your record as stored, one object per row.",
        "",
        "| file | what it holds |",
        "|---|---|",
        *(f"| {f.name} | {f.describes} |" for f in FILES),
        "",
    ]
    return "\n".join(lines).encode()


async def build(
    conn: AsyncConnection[Any],
    patient: uuid.UUID,
    progress: Callable[[int, int], Awaitable[None]],
) -> bytes:
    """The zip of the patient's record; `progress(done, total)` after each file."""
    buffer = io.BytesIO()
    total = len(FILES) + 1
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("README.md", readme(patient, datetime.now(UTC)))
        await progress(1, total)
        archive.writestr(READINGS_CSV.name, await _readings_csv(conn, patient))
        await progress(2, total)
        archive.writestr(READINGS_FHIR.name, await _readings_fhir(conn, patient))
        await progress(3, total)
        for done, part in enumerate(PARTS, start=4):
            archive.writestr(part.name, await _part(conn, patient, part))
            await progress(done, total)
    return buffer.getvalue()
