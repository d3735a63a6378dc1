"""`glucobridge demo`: the whole system on this machine, with demo patients.

Starts a private Mosquitto (dynamic security, the one broker set-up) and PostgreSQL/
TimescaleDB (or uses the configured ones), the ingest worker, the alerts worker and the API as
child processes. Each demo patient signs in to the API, claims their meter and registers their
bridge there (the API provisions it in the broker); the bridge then syncs three real
patients' readings from the Shanghai datasets through the broker. It prints the URLs and waits
for Ctrl-C.

Secrets are made on each start: the API's token-signing secret, the broker's passwords and the
demo logins' passwords. Nothing published in the source signs or opens anything.
"""

from __future__ import annotations

import csv
import os
import secrets
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import psycopg

from core.contract import WireReading
from core.settings import MqttEndpoint
from core.units import Unit
from core.vocabulary import SampleLocation, SampleType
from firmware_sim.model import ModelReading
from firmware_sim.replay import replay
from stack.bridge_demo import DemoMeter, sync_demo_patients
from stack.data import DATA_DIR_VARIABLE, data_dir
from stack.local import Services, local_stack
from stack.mosquitto import broker_url
from stack.proc import free_port, port_open

PREFERRED_API_PORT = 8000
# The API and workers start in a few seconds; a loaded machine may take longer.
API_START_TIMEOUT_S = 60.0
# A signing secret of 384 bits, made for this run (ApiSettings wants at least 256).
JWT_SECRET_BYTES = 48
SHANGHAI = ZoneInfo("Asia/Shanghai")
# Fixed namespace: the demo patients have the same ids on every run and every machine.
DEMO_NAMESPACE = uuid.UUID("6f1c2e4a-8d3b-4c5e-9a7f-0b1d2c3e4f50")


@dataclass(frozen=True)
class DemoPatient:
    key: str
    name: str
    source: str  # a file of the Shanghai datasets
    meter_serial: str

    @property
    def id(self) -> uuid.UUID:
        return uuid.uuid5(DEMO_NAMESPACE, self.key)

    @property
    def bridge_id(self) -> str:
        """The name the patient gives their bridge; the API adds a random part to make the
        registered bridge's id (tests seeding readings without a bridge send as this)."""
        return f"demo-home-{self.key}"


DEMO_PATIENTS = (
    DemoPatient("wang-fang", "王芳 Wang Fang", "T1DM/1001_0_20210730.csv", "DEMO-CNO-1001"),
    DemoPatient("li-wei", "李伟 Li Wei", "T2DM/2001_0_20201102.csv", "DEMO-ACG-2001"),
    DemoPatient("zhang-min", "张敏 Zhang Min", "T2DM/2003_0_20210615.csv", "DEMO-ACG-2003"),
)


@dataclass(frozen=True)
class DemoCgmPatient:
    """A patient whose CGM history the demo imports (as the patient would upload their
    sensor app's export): one Shanghai file per period, oldest first."""

    key: str
    name: str
    sources: tuple[str, ...]

    @property
    def id(self) -> uuid.UUID:
        return uuid.uuid5(DEMO_NAMESPACE, self.key)


# With the meter patients they exercise every panel: a sensor wearer with a previous period
# to compare (35 % very high now), and one with frequent lows (24 % below 70 mg/dL).
DEMO_CGM_PATIENTS = (
    DemoCgmPatient(
        "chen-jie", "陈杰 Chen Jie", ("T1DM/1006_0_20210114.csv", "T1DM/1006_1_20210209.csv")
    ),
    DemoCgmPatient("liu-yang", "刘洋 Liu Yang", ("T1DM/1002_1_20210521.csv",)),
)
ALL_DEMO_PATIENTS: tuple[DemoPatient | DemoCgmPatient, ...] = DEMO_PATIENTS + DEMO_CGM_PATIENTS
CGM_COLUMN = "cgm_mg_dl"


def demo_file(patient: DemoPatient) -> Path:
    """The patient's Shanghai file: from GLUCOBRIDGE_DATA_DIR if set, else the shipped copy."""
    return _data_file(patient.source)


def _data_file(source: str) -> Path:
    path = data_dir() / "shanghai" / source
    if not path.is_file():
        raise SystemExit(
            f"demo data not found: {path}. Unset {DATA_DIR_VARIABLE} to use the data shipped "
            "with glucobridge, or point it at a folder holding shanghai/T1DM and shanghai/T2DM"
        )
    return path


def demo_readings(patient: DemoPatient, today: date) -> list[WireReading]:
    """The patient's real fingersticks, moved by whole days so the last one was yesterday."""
    rows = list(replay(demo_file(patient)))
    shift = timedelta(days=(today - rows[-1].local_time.date()).days - 1)
    readings = []
    for sequence, row in enumerate(rows, start=1):
        local = row.local_time + shift
        readings.append(
            WireReading(
                sequence_number=sequence,
                meter_time=local,
                time_offset_minutes=None,
                measured_at=local.replace(tzinfo=SHANGHAI),
                value=row.mg_dl,
                unit=Unit.MG_DL,
                sample_type=SampleType.CAPILLARY_WHOLE_BLOOD,
                sample_location=SampleLocation.FINGER,
                meal=row.meal,
            )
        )
    return readings


def demo_cgm_files(patient: DemoCgmPatient, today: date) -> list[tuple[str, str]]:
    """The patient's CGM files (name, CSV text of `time,cgm_mg_dl`), every time moved by the
    same whole days so the last reading was yesterday: the periods keep their distance."""
    periods = []
    for source in patient.sources:
        with _data_file(source).open(newline="", encoding="utf-8") as handle:
            rows = [
                (datetime.fromisoformat(r["time"]), r[CGM_COLUMN].strip())
                for r in csv.DictReader(handle)
                if (r.get(CGM_COLUMN) or "").strip()
            ]
        periods.append((Path(source).name, rows))
    last = periods[-1][1][-1][0]
    shift = timedelta(days=(today - last.date()).days - 1)
    files = []
    for name, rows in periods:
        lines = [f"time,{CGM_COLUMN}"] + [
            f"{(at + shift).isoformat(sep=' ')},{value}" for at, value in rows
        ]
        files.append((name, "\n".join(lines) + "\n"))
    return files


def import_cgm(base: str, patient: DemoCgmPatient, login: DemoLogin, today: date) -> int:
    """As the patient would: sign in and import each period's CGM export through the API
    (`POST .../imports`, the one intake). Returns the readings stored."""
    stored = 0
    with httpx.Client(base_url=base, timeout=60) as http:
        token = _answer(
            http.post(
                "/api/v1/auth/token", data={"username": login.email, "password": login.password}
            ),
            f"{login.email} signs in",
        )
        auth = {"Authorization": f"Bearer {token['access_token']}"}
        for name, text in demo_cgm_files(patient, today):
            result = _answer(
                http.post(
                    f"/api/v1/patients/{patient.id}/imports",
                    files={"file": (name, text.encode(), "text/csv")},
                    data={
                        "value_column": CGM_COLUMN,
                        "tz": "Asia/Shanghai",
                        "source": "cgm",
                    },
                    headers=auth,
                ),
                f"{patient.name} imports {name}",
            )
            stored += int(str(result["stored"]))
    return stored


def register_patients(database_url: str) -> None:
    """The demo patients' records (their ids are the same on every run)."""
    with psycopg.connect(database_url) as conn:
        for p in ALL_DEMO_PATIENTS:
            conn.execute(
                "INSERT INTO patients (id, display_name, timezone) VALUES (%s, %s, %s)"
                " ON CONFLICT (id) DO NOTHING",
                (p.id, p.name, "Asia/Shanghai"),
            )


@dataclass(frozen=True)
class DemoLogin:
    role: str
    email: str
    password: str
    sees: str
    key: str = ""  # the demo key of the person: a patient's, "nutritionist", "clinician"


# Demo accounts are (re)created on every run with fresh passwords, printed at start-up.
_DEMO_USER = """
INSERT INTO users (email, display_name, role, password_hash)
VALUES (%(email)s, %(name)s, %(role)s, %(hash)s)
ON CONFLICT (lower(email)) DO UPDATE SET password_hash = EXCLUDED.password_hash
RETURNING id
"""
DEMO_CLINIC = uuid.uuid5(DEMO_NAMESPACE, "clinic")


def register_logins(database_url: str) -> list[DemoLogin]:
    """A login per demo patient, a nutritionist and a clinician (through the demo clinic)
    with grants to every demo patient."""
    from api.auth import hash_password

    logins: list[DemoLogin] = []

    def account(
        conn: psycopg.Connection[tuple[object, ...]], key: str, name: str, role: str, sees: str
    ) -> object:
        login = DemoLogin(role, f"{key}@demo.glucobridge.org", secrets.token_urlsafe(9), sees, key)
        row = conn.execute(
            _DEMO_USER,
            {
                "email": login.email,
                "name": name,
                "role": role,
                "hash": hash_password(login.password),
            },
        ).fetchone()
        assert row is not None
        logins.append(login)
        return row[0]

    with psycopg.connect(database_url) as conn:
        for p in ALL_DEMO_PATIENTS:
            user = account(conn, p.key, p.name, "patient", f"{p.name} (self)")
            conn.execute("UPDATE patients SET user_id = %s WHERE id = %s", (user, p.id))
        nutritionist = account(
            conn,
            "nutritionist",
            "Demo Nutritionist",
            "nutritionist",
            "every demo patient: readings, trends",
        )
        clinician = account(
            conn,
            "clinician",
            "Demo Clinician",
            "clinician",
            "every demo patient, through the demo clinic: everything",
        )
        conn.execute(
            "INSERT INTO organisations (id, name) VALUES (%s, 'Demo Clinic')"
            " ON CONFLICT (id) DO NOTHING",
            (DEMO_CLINIC,),
        )
        conn.execute(
            "INSERT INTO organisation_members (organisation_id, user_id)"
            " VALUES (%s, %s) ON CONFLICT DO NOTHING",
            (DEMO_CLINIC, clinician),
        )
        for p in ALL_DEMO_PATIENTS:
            for user_id, org, scopes in [
                (nutritionist, None, ["readings", "trends"]),
                (None, DEMO_CLINIC, ["readings", "trends", "alerts", "exports"]),
            ]:
                conn.execute(
                    "INSERT INTO grants (patient_id, grantee_user_id, grantee_organisation_id,"
                    " scopes, status, decided_at) SELECT %(p)s, %(u)s, %(o)s, %(s)s, 'active',"
                    " now() WHERE NOT EXISTS (SELECT 1 FROM grants WHERE patient_id = %(p)s"
                    " AND status = 'active' AND (grantee_user_id = %(u)s"
                    " OR grantee_organisation_id = %(o)s))",
                    {"p": p.id, "u": user_id, "o": org, "s": scopes},
                )
    return logins


def _child(args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "stack", *args], env=env, start_new_session=True)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def run() -> None:
    with local_stack("demo") as services:
        _run(services)


class DemoError(RuntimeError):
    """The demo could not set itself up through the API."""


def _wait_for_api(port: int, children: list[subprocess.Popen[bytes]]) -> None:
    deadline = time.monotonic() + API_START_TIMEOUT_S
    while not port_open(port):
        if time.monotonic() > deadline or any(c.poll() is not None for c in children):
            raise DemoError("the API did not start; see its log above")
        time.sleep(0.1)


def _answer(response: httpx.Response, what: str) -> dict[str, object]:
    if not response.is_success:
        raise DemoError(f"{what}: {response.status_code} {response.text}")
    body: dict[str, object] = response.json()
    return body


def register_bridge(
    base: str, patient: DemoPatient, login: DemoLogin, broker: MqttEndpoint
) -> tuple[str, str]:
    """As the patient would: sign in, claim the meter, register a bridge. Returns the
    bridge's id and broker URL (with the password the API showed once)."""
    with httpx.Client(base_url=base, timeout=30) as http:
        token = _answer(
            http.post(
                "/api/v1/auth/token", data={"username": login.email, "password": login.password}
            ),
            f"{login.email} signs in",
        )
        auth = {"Authorization": f"Bearer {token['access_token']}"}
        _answer(
            http.post(
                f"/api/v1/patients/{patient.id}/meters",
                json={"serial": patient.meter_serial},
                headers=auth,
            ),
            f"{patient.name} claims meter {patient.meter_serial}",
        )
        bridge = _answer(
            http.post(
                f"/api/v1/patients/{patient.id}/bridges",
                json={"name": patient.bridge_id, "label": "demo home"},
                headers=auth,
            ),
            f"{patient.name} registers a bridge",
        )
    url = broker_url(
        str(bridge["mqtt_username"]), str(bridge["mqtt_password"]), broker.port, broker.host
    )
    return str(bridge["bridge_id"]), url


def _run(services: Services) -> None:
    port = PREFERRED_API_PORT if not port_open(PREFERRED_API_PORT) else free_port()
    env = dict(
        os.environ,
        GLUCOBRIDGE_DATABASE_URL=services.database_url,
        GLUCOBRIDGE_MQTT_URL=services.mqtt_url,
        GLUCOBRIDGE_MQTT_ADMIN_URL=services.mqtt_admin_url,
        GLUCOBRIDGE_JWT_SECRET=secrets.token_urlsafe(JWT_SECRET_BYTES),
        GLUCOBRIDGE_PORT=str(port),
    )
    register_patients(services.database_url)
    logins = {login.key: login for login in register_logins(services.database_url)}
    children = [
        _child(["ingest"], env),
        _child(["alerts"], dict(env, GLUCOBRIDGE_MQTT_URL=services.alerts_mqtt_url)),
        _child(["api"], env),
    ]
    try:
        _wait_for_api(port, children)
        base = f"http://127.0.0.1:{port}"
        today = datetime.now(SHANGHAI).date()
        # Each patient's fingersticks go into a simulated meter; the bridge the patient
        # registered bonds with it over the virtual BLE link, syncs it and delivers through
        # the broker (stack.bridge_demo).
        meters = []
        for patient in DEMO_PATIENTS:
            bridge_id, url = register_bridge(base, patient, logins[patient.key], services.broker)
            readings = [
                ModelReading(r.measured_at, round(r.value), r.meal)
                for r in demo_readings(patient, today)
            ]
            meters.append(DemoMeter(bridge_id, url, patient.meter_serial, SHANGHAI, readings))
        synced = sync_demo_patients(meters)
        for patient, stored in zip(DEMO_PATIENTS, synced, strict=True):
            print(f"{patient.name}: {stored} readings synced from the meter and stored", flush=True)
        for cgm in DEMO_CGM_PATIENTS:
            stored = import_cgm(base, cgm, logins[cgm.key], today)
            print(f"{cgm.name}: {stored} CGM readings imported and stored", flush=True)
        for patient in DEMO_PATIENTS:
            print(f"  {patient.name}: {base}/api/v1/patients/{patient.id}/readings", flush=True)
        print(f"  sign in: POST {base}/api/v1/auth/token (username, password)", flush=True)
        print(f"  dashboards: {base}/dashboards/ (sign in with a login below)", flush=True)
        for person in ALL_DEMO_PATIENTS:
            pages = f"{base}/dashboards/{{page}}.html?patient={person.id}"
            print(
                f"  {person.name}: "
                + "  ".join(pages.format(page=page) for page in ("patient", "nutrition", "report")),
                flush=True,
            )
        print(f"  clinician worklist: {base}/dashboards/clinician.html", flush=True)
        for login in logins.values():
            print(
                f"  login {login.role}: {login.email} {login.password}  sees {login.sees}",
                flush=True,
            )
        print(f"ready: {base}  (API docs {base}/docs; Ctrl-C stops everything)", flush=True)
        while all(child.poll() is None for child in children):
            time.sleep(0.5)
        raise RuntimeError("a demo service exited; see its log above")
    finally:
        for child in reversed(children):
            _stop(child)
