"""`glucobridge demo`: reaches "ready" with a URL that serves the demo readings (delivered by
bridges the patients registered through the API), signs with a secret of its own, and Ctrl-C
leaves no Mosquitto, PostgreSQL or Python process behind."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx

from api.auth import Role, issue_access_token
from core.settings import DEV_JWT_SECRET
from stack.demo import ALL_DEMO_PATIENTS, DEMO_CGM_PATIENTS

# The demo prints its logins: "login <role>: <email> <password>  sees ...".
_LOGIN = re.compile(r"login (\w+): (\S+) (\S+)")
_IMPORTED = re.compile(r": (\d+) CGM readings imported and stored")
# Starting both services, three patients' readings through the broker: seconds here.
READY_TIMEOUT_S = 120.0


def _descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_demo_serves_readings_and_ctrl_c_stops_everything() -> None:
    env = {
        k: v
        for k, v in os.environ.items()
        if k
        not in ("GLUCOBRIDGE_DATABASE_URL", "GLUCOBRIDGE_MQTT_URL", "GLUCOBRIDGE_MQTT_ADMIN_URL")
    }
    demo = subprocess.Popen(
        [sys.executable, "-m", "stack", "demo"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
        text=True,
    )
    assert demo.stdout is not None
    lines: list[str] = []
    seen: set[int] = set()
    try:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            line = demo.stdout.readline()
            assert line, "demo exited before ready:\n" + "".join(lines)
            lines.append(line)
            seen |= _descendants(demo.pid)
            if line.startswith("ready: "):
                break
        else:
            raise AssertionError("no ready line:\n" + "".join(lines))
        seen |= _descendants(demo.pid)
        urls = [m.group(0) for m in map(re.compile(r"http://\S+/readings").search, lines) if m]
        assert len(urls) == 3
        logins = [m.groups() for m in map(_LOGIN.search, lines) if m]
        # Three meter patients, two CGM patients, a nutritionist, a clinician.
        assert len(logins) == len(ALL_DEMO_PATIENTS) + 2
        imported = [int(m.group(1)) for m in map(_IMPORTED.search, lines) if m]
        assert len(imported) == len(DEMO_CGM_PATIENTS) and min(imported) > 900, imported
        clinician = next((e, p) for r, e, p in logins if r == "clinician")
        base = urls[0].split("/api/")[0]
        token = httpx.post(
            f"{base}/api/v1/auth/token", data={"username": clinician[0], "password": clinician[1]}
        ).json()["access_token"]
        for url in urls:
            body = httpx.get(
                url, params={"limit": 1000}, headers={"Authorization": f"Bearer {token}"}
            ).json()
            assert len(body["items"]) > 20, body
        # Each patient registered their bridge through the API (it has the random part the
        # API adds to the name asked for), and it is the one that delivered the readings.
        for role, email, password in logins:
            if role != "patient":
                continue
            own = httpx.post(
                f"{base}/api/v1/auth/token", data={"username": email, "password": password}
            ).json()["access_token"]
            auth = {"Authorization": f"Bearer {own}"}
            me = httpx.get(f"{base}/api/v1/users/me", headers=auth).json()
            bridges = httpx.get(
                f"{base}/api/v1/patients/{me['patient_id']}/bridges", headers=auth
            ).json()["items"]
            key = email.split("@")[0]
            if key in {p.key for p in DEMO_CGM_PATIENTS}:
                assert bridges == []  # their sensor history came as an import
                continue
            assert [b["id"].rsplit("-", 1)[0] for b in bridges] == [f"demo-home-{key}"]
        # The demo signs tokens with a secret made at start-up: one forged with the
        # development placeholder published in the source opens nothing.
        clinician_id = httpx.get(
            f"{base}/api/v1/users/me", headers={"Authorization": f"Bearer {token}"}
        ).json()["id"]
        forged = issue_access_token(
            DEV_JWT_SECRET, uuid.UUID(clinician_id), Role.CLINICIAN, datetime.now(UTC)
        )
        refused = httpx.get(urls[0], headers={"Authorization": f"Bearer {forged}"})
        assert refused.status_code == 401
    finally:
        demo.send_signal(signal.SIGINT)
        out, _ = demo.communicate(timeout=60)
    assert demo.returncode == 0, out
    assert len(seen) >= 5  # postgres, mosquitto, ingest, alerts and api at least
    left = [pid for pid in seen if _alive(pid)]
    assert left == [], f"processes left running: {left}"
