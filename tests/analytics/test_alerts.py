"""Acceptance 3: alerts against the real database, broker and a real webhook receiver.

The receivers are tiny HTTP servers on 127.0.0.1, so these tests run the API and the alerts
worker with the operator's on-premises setting (`webhook_allow_private`); with it off (the
default), what a webhook may target is tested at the end of this file and in
tests/api/test_webhook_targets.py."""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import psycopg
import pytest

from core.contract import patient_alerts_topic
from core.settings import ApiSettings
from ingest.alerts.signature import SIGNATURE_HEADER, SignatureError, sign, verify
from ingest.alerts.worker import AlertsWorker
from stack.local import Services
from stack.proc import free_port
from tests.analytics.rows import Row, add_patient, insert
from tests.conftest import running_alerts_worker
from tests.mqtt_client import Probe
from tests.support import serve_api, wait_for

FIVE_MIN = timedelta(minutes=5)


@pytest.fixture
def api(database: str) -> Iterator[httpx.Client]:
    """The API with the on-premises setting: webhooks to this machine's receivers."""
    settings = ApiSettings(database_url=database, webhook_allow_private=True)
    with serve_api(settings) as base_url, httpx.Client(base_url=base_url) as client:
        yield client


def cgm_rows(start: datetime, values: list[float]) -> list[Row]:
    return [
        Row(start + i * FIVE_MIN, v, sample_type="interstitial_fluid") for i, v in enumerate(values)
    ]


def alerts(database: str, patient: uuid.UUID) -> list[dict[str, Any]]:
    with psycopg.connect(database) as conn:
        cur = conn.execute(
            "SELECT id, kind, level, delivery, readings, ended_at, extreme_mg_dl"
            " FROM alerts WHERE patient_id = %s ORDER BY id",
            (patient,),
        )
        names = [c.name for c in cur.description or []]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def deliveries(database: str) -> list[dict[str, Any]]:
    with psycopg.connect(database) as conn:
        cur = conn.execute(
            "SELECT channel, attempts, delivered_at, last_error FROM alert_deliveries ORDER BY id"
        )
        names = [c.name for c in cur.description or []]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def test_a_low_episode_of_six_readings_raises_one_alert(
    database: str, alerts_worker: AlertsWorker
) -> None:
    patient = add_patient(database, "Europe/Berlin")
    start = datetime.now(UTC) - timedelta(hours=1)
    values = [110.0, 66.0, 64.0, 61.0, 58.0, 63.0, 67.0, 75.0, 80.0]
    rows = cgm_rows(start, values)
    # Three syncs, each its own transaction, as a sensor's uploads arrive.
    for part in (rows[:3], rows[3:6], rows[6:]):
        insert(database, patient, part, serial=f"cgm-{len(part)}-{part[0].value}")
    wait_for(lambda: any(a["readings"] == 6 for a in alerts(database, patient)))
    (alert,) = alerts(database, patient)
    assert alert["kind"] == "low" and alert["level"] == 1 and alert["delivery"] == "page"
    assert alert["extreme_mg_dl"] == 58.0
    assert alert["ended_at"] is None  # 75 and 80 came 5 and 10 min after the last low

    # 15 minutes back in range ends the episode; a new low afterwards is a new alert.
    later = rows[-1].measured_at + FIVE_MIN
    insert(database, patient, cgm_rows(later, [82.0, 50.0, 49.0, 52.0]), serial="cgm-b")
    wait_for(lambda: len(alerts(database, patient)) == 2)
    first, second = alerts(database, patient)
    assert first["ended_at"] is not None
    assert second["kind"] == "low" and second["level"] == 2 and second["readings"] == 3


def test_a_week_old_low_synced_today_is_history_not_a_page(
    database: str, alerts_worker: AlertsWorker, api: httpx.Client
) -> None:
    patient = add_patient(database, "UTC", api)
    hook = api.post(f"/api/v1/patients/{patient}/webhooks", json={"url": "http://127.0.0.1:9/"})
    assert hook.status_code == 201
    week_ago = datetime.now(UTC) - timedelta(days=7)
    insert(database, patient, cgm_rows(week_ago, [65.0, 60.0, 55.0, 62.0]), serial="old")
    # A live reading after it, so the worker has certainly read the old ones too.
    insert(database, patient, cgm_rows(datetime.now(UTC), [120.0]), serial="new")
    wait_for(lambda: len(alerts(database, patient)) == 1)
    (alert,) = alerts(database, patient)
    assert alert["delivery"] == "history" and alert["readings"] == 4
    assert alert["ended_at"] is not None
    assert deliveries(database) == []  # nothing to send: no webhook, no MQTT
    page = api.get(f"/api/v1/patients/{patient}/alerts", params={"delivery": "page"}).json()
    assert page["items"] == []


def _sse_events(response: httpx.Response) -> Iterator[dict[str, Any]]:
    event: dict[str, str] = {}
    for line in response.iter_lines():
        if line.startswith(":"):
            continue
        if not line:
            if "data" in event:
                yield json.loads(event["data"])
            event = {}
            continue
        key, _, value = line.partition(": ")
        event[key] = value


def test_acknowledging_stops_the_stream_repeating_it(
    database: str, alerts_worker: AlertsWorker, api: httpx.Client
) -> None:
    patient = add_patient(database, "UTC", api)
    now = datetime.now(UTC)
    insert(database, patient, cgm_rows(now - timedelta(minutes=20), [60.0, 59.0, 58.0]), "a")
    url = f"/api/v1/patients/{patient}/alerts/stream"
    seen: list[int] = []
    with api.stream("GET", url, params={"repeat_s": 1}, timeout=30) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        events = _sse_events(response)
        for event in events:
            seen.append(event["id"])
            if len(seen) == 2:
                break
        low_id = seen[0]
        assert seen == [low_id, low_id]  # unacknowledged: repeated
        # Signed by the signed-in user: a name in the body is not who acknowledged.
        ack = api.post(
            f"/api/v1/patients/{patient}/alerts/{low_id}/acknowledge",
            json={"by": "Dr. Nobody"},
        )
        assert ack.status_code == 200, ack.text
        assert ack.json()["acknowledged_by"] == "patient"  # add_patient's account name
        assert ack.json()["acknowledged_by_user_id"] is not None
        # A high episode after the acknowledgement; by the time it has been sent twice more
        # than repeat_s has passed, so the low would have come again had it still rung.
        insert(database, patient, cgm_rows(now - timedelta(minutes=5), [300.0, 310.0]), "b")
        after: list[int] = []
        for event in events:
            after.append(event["id"])
            if len(after) >= 2 and after[-1] == after[-2] != low_id:
                break
        assert low_id not in after[1:], after  # the first may already have been in flight


class Receiver:
    """A tiny real HTTP server that records what it is sent, and answers `status` (with
    `location`, a redirect)."""

    def __init__(self, port: int, status: int = 204, location: str | None = None) -> None:
        received: list[tuple[dict[str, str], bytes]] = []
        self.received = received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                received.append((dict(self.headers.items()), body))
                self.send_response(status)
                if location is not None:
                    self.send_header("Location", location)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @contextmanager
    def running(self) -> Iterator[Receiver]:
        self.thread.start()
        try:
            yield self
        finally:
            self.server.shutdown()
            self.server.server_close()


def test_a_receiver_that_is_down_gets_the_alert_when_it_comes_back(
    database: str, alerts_worker: AlertsWorker, api: httpx.Client
) -> None:
    patient = add_patient(database, "UTC", api)
    port = free_port()
    created = api.post(
        f"/api/v1/patients/{patient}/webhooks", json={"url": f"http://127.0.0.1:{port}/hook"}
    ).json()
    insert(database, patient, cgm_rows(datetime.now(UTC), [58.0, 57.0, 56.0]), "m")
    # Nobody listens yet: the delivery fails, is kept, and is retried.
    wait_for(
        lambda: any(
            d["channel"] == "webhook" and d["attempts"] >= 2 and d["last_error"]
            for d in deliveries(database)
        )
    )
    with Receiver(port).running() as receiver:
        wait_for(lambda: len(receiver.received) >= 1)
        wait_for(
            lambda: all(
                d["delivered_at"] is not None
                for d in deliveries(database)
                if d["channel"] == "webhook"
            )
        )
    headers, body = receiver.received[0]
    verify(created["secret"], headers[SIGNATURE_HEADER], body)
    payload = json.loads(body)
    assert payload["kind"] == "low" and payload["patient_id"] == str(patient)
    assert payload["event"] == "opened" and payload["schema"] == "glucobridge.alert/1"


def test_a_bad_signature_is_detected() -> None:
    secret = "s3cret"
    body = b'{"kind":"low","extreme_mg_dl":50}'
    now = time.time()
    header = sign(secret, int(now), body)
    verify(secret, header, body, now=now)
    with pytest.raises(SignatureError, match="does not match"):
        verify(secret, header, body.replace(b"50", b"150"), now=now)
    with pytest.raises(SignatureError, match="does not match"):
        verify("another", header, body, now=now)
    with pytest.raises(SignatureError, match="tolerance"):
        verify(secret, header, body, now=now + 3600)
    with pytest.raises(SignatureError, match="malformed"):
        verify(secret, "v1=abc", body, now=now)


def test_alerts_reach_the_patients_home_display_and_no_other(
    services: Services, database: str, alerts_worker: AlertsWorker
) -> None:
    patient = add_patient(database, "UTC")
    other = add_patient(database, "UTC")
    # A home display is a broker user of its own, in its patient's display role.
    display_url = services.add_display(patient)
    other_url = services.add_display(other)
    with (
        Probe(display_url, _user_of(display_url)) as display,
        Probe(other_url, _user_of(other_url)) as stranger,
    ):
        assert display.connect().is_failure is False
        assert stranger.connect().is_failure is False
        assert str(display.subscribe(patient_alerts_topic(str(patient)))) == "Granted QoS 1"
        # Another patient's display may subscribe to its own alerts only.
        assert str(stranger.subscribe(patient_alerts_topic(str(patient)))) == "Not authorized"
        assert str(stranger.subscribe(patient_alerts_topic("+"))) == "Not authorized"
        insert(database, patient, cgm_rows(datetime.now(UTC), [40.0, 41.0, 42.0]), "m")
        wait_for(lambda: len(display.received) >= 1)
        wait_for(lambda: all(d["delivered_at"] is not None for d in deliveries(database)))
        assert stranger.received == []
    payload = json.loads(display.received[0].payload)
    assert payload["kind"] == "low" and payload["level"] == 2


def _user_of(url: str) -> str:
    return url.removeprefix("mqtt://").split(":", 1)[0]


class Tripwire:
    """A TCP listener that only counts who connects: a webhook that must never be sent."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.port: int = self.sock.getsockname()[1]
        self.connections = 0
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)

    def _accept(self) -> None:
        while not self.stopping.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            self.connections += 1
            conn.close()

    @contextmanager
    def running(self) -> Iterator[Tripwire]:
        self.thread.start()
        try:
            yield self
        finally:
            self.stopping.set()
            self.thread.join(5)
            self.sock.close()


def test_a_webhook_whose_name_now_resolves_inward_is_not_sent(
    services: Services, database: str
) -> None:
    """Checked again at delivery, after resolving the name: an endpoint registered while its
    name pointed outward (stored here directly) and now resolving to this machine's loopback
    is refused, and nothing connects to the address."""
    patient = add_patient(database, "UTC")
    with Tripwire().running() as tripwire:
        with psycopg.connect(database) as conn:
            conn.execute(
                "INSERT INTO webhook_endpoints (patient_id, url, secret) VALUES (%s, %s, 'k')",
                (patient, f"https://localhost:{tripwire.port}/hook"),
            )
        with running_alerts_worker(services, database, webhook_allow_private=False):
            insert(database, patient, cgm_rows(datetime.now(UTC), [45.0, 44.0]), "m")
            wait_for(
                lambda: any(
                    d["channel"] == "webhook" and d["attempts"] >= 2 for d in deliveries(database)
                )
            )
        assert tripwire.connections == 0
    (webhook,) = [d for d in deliveries(database) if d["channel"] == "webhook"]
    assert webhook["delivered_at"] is None
    assert "not a public address" in webhook["last_error"]


def test_a_redirect_from_the_receiver_is_not_followed(
    database: str, alerts_worker: AlertsWorker, api: httpx.Client
) -> None:
    patient = add_patient(database, "UTC", api)
    inner = Receiver(free_port())
    port = free_port()
    bouncer = Receiver(port, status=307, location=f"http://127.0.0.1:{inner.server.server_port}/")
    created = api.post(
        f"/api/v1/patients/{patient}/webhooks", json={"url": f"http://127.0.0.1:{port}/hook"}
    )
    assert created.status_code == 201, created.text
    with bouncer.running(), inner.running():
        insert(database, patient, cgm_rows(datetime.now(UTC), [45.0, 44.0]), "m")
        # Tried, and tried again: each time the redirect is the answer, not a way onward.
        wait_for(
            lambda: any(
                d["channel"] == "webhook"
                and d["attempts"] >= 2
                and d["last_error"] == "receiver answered 307"
                and d["delivered_at"] is None
                for d in deliveries(database)
            )
        )
        assert len(bouncer.received) >= 2
    assert inner.received == []
