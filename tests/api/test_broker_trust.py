"""A bridge is a patient's device, not a key to everyone's data (issue 11, acceptance 1).

Played from outside as an attacker would: a patient (the attacker) registers a bridge through
the API, the one broker set-up provisions it (dynamic security, generated from
core.broker_roles), and the attacker then drives a hand-written paho client, or Debian's own
`mosquitto_sub` / `mosquitto_pub` (mosquitto-clients, the reference clients of the broker),
with that bridge's credentials. Beside it the victim's bridge syncs, the ingest worker stores
and the alerts worker raises alerts. Each test ends by checking that the victim's record,
alerts and connection are untouched.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import httpx
import psycopg
import pytest

from core.broker_roles import ALERTS_USER, INGEST_USER, worker_user
from core.contract import (
    ReadingsBatch,
    acks_topic,
    patient_alerts_topic,
    readings_topic,
    shared,
    status_topic,
)
from core.settings import MqttEndpoint
from device.uplink import Uplink
from ingest.alerts.worker import AlertsWorker
from ingest.worker import Worker
from stack.local import Services
from tests.api.conftest import Cast, Person
from tests.mqtt_client import Probe, connect_answer
from tests.support import CONFIRM_TIMEOUT_S, batch, readings, wait_for

NOT_AUTHORIZED = "Not authorized"
VICTIM_METER = "SN-VICTIM-1"
ATTACKER_METER = "SN-ATTACKER-1"
# Every filter a bridge might try in order to read what is not its own.
FORBIDDEN_FILTERS = [
    shared("glucose/v1/bridges/+/readings", "ingest"),  # ingest's own share group
    shared("glucose/v1/bridges/+/readings", "mine"),  # a group of its own
    shared("glucose/v1/#", "ingest"),
    "glucose/v1/bridges/+/readings",
    "glucose/v1/bridges/+/acks",
    "glucose/v1/bridges/+/status",
    "glucose/v1/patients/+/alerts",
    "glucose/v1/#",
    "#",
    "$CONTROL/dynamic-security/#",
    "$SYS/#",
]


@dataclass
class Scene:
    client: httpx.Client
    services: Services
    database: str
    victim: Person
    attacker: Person
    victim_bridge: str
    victim_uplink: Uplink
    attacker_bridge: str
    attacker_url: str
    ingest: Worker
    sent: list[ReadingsBatch] = field(default_factory=list)

    def victim_sends(self, mg_dl: float | None = None) -> None:
        """The victim's bridge delivers one reading and waits for ingest's confirmation."""
        # One a minute, the latest a minute ago: in order, none in the future.
        at = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=60)
        items = readings(1, start=at + timedelta(minutes=len(self.sent)))
        if mg_dl is not None:
            items = [items[0].model_copy(update={"value": mg_dl})]
        sent = batch(self.victim_bridge, VICTIM_METER, items)
        self.victim_uplink.publish(sent)
        self.victim_uplink.wait_confirmed([sent.batch_id], CONFIRM_TIMEOUT_S)
        self.sent.append(sent)

    def victims_readings(self) -> list[tuple[str, float]]:
        page = self.client.get(
            f"/api/v1/patients/{self.victim.patient_id}/readings",
            params={"limit": 500},
            headers=self.victim.auth,
        ).json()
        return sorted((r["measured_at"], r["value"]) for r in page["items"])

    def victims_alerts(self) -> list[dict[str, object]]:
        answer = self.client.get(
            f"/api/v1/patients/{self.victim.patient_id}/alerts", headers=self.victim.auth
        )
        items: list[dict[str, object]] = answer.json()["items"]
        return items

    def assert_victim_untouched(self) -> None:
        """Everything the victim's bridge sent, nothing else; no alert; one connection,
        never taken over; the ingest worker never lost the broker."""
        self.victim_sends()  # still delivering after the attack, end to end
        expected = sorted(
            (r.measured_at.isoformat().replace("+00:00", "Z"), r.value)
            for b in self.sent
            for r in b.readings
        )
        got = [(_z(at), value) for at, value in self.victims_readings()]
        assert got == expected
        assert self.victims_alerts() == []
        assert self.victim_uplink.connections == 1, "the victim's bridge was disconnected"
        assert self.ingest.connection == 1, "the ingest worker was disconnected"


def _z(at: str) -> str:
    return datetime.fromisoformat(at).astimezone(UTC).isoformat().replace("+00:00", "Z")


def _register(client: httpx.Client, person: Person, name: str) -> dict[str, str]:
    answer = client.post(
        f"/api/v1/patients/{person.patient_id}/bridges", json={"name": name}, headers=person.auth
    )
    assert answer.status_code == 201, answer.text
    claim = client.post(
        f"/api/v1/patients/{person.patient_id}/meters",
        json={"serial": VICTIM_METER if name == "victim" else ATTACKER_METER},
        headers=person.auth,
    )
    assert claim.status_code == 200, claim.text
    body: dict[str, str] = answer.json()
    return body


@pytest.fixture
def scene(
    client: httpx.Client,
    cast: Cast,
    services: Services,
    ingest_worker: Worker,
    alerts_worker: AlertsWorker,
) -> Iterator[Scene]:
    victim, attacker = cast.patient, cast["other_patient"]
    mine = _register(client, victim, "victim")
    theirs = _register(client, attacker, "attacker")
    victim_url = services.url(mine["mqtt_username"], mine["mqtt_password"])
    with Uplink(victim_url, mine["bridge_id"]) as uplink:
        found = Scene(
            client,
            services,
            cast.database_url,
            victim,
            attacker,
            mine["bridge_id"],
            uplink,
            theirs["bridge_id"],
            services.url(theirs["mqtt_username"], theirs["mqtt_password"]),
            ingest_worker,
        )
        found.victim_sends()
        yield found


def test_a_bridge_with_an_ingest_workers_client_id_is_refused_and_disconnects_nobody(
    scene: Scene,
) -> None:
    # The ingest worker of this test runs as ingest-0; the session it keeps is the prize.
    assert scene.ingest.user == worker_user(INGEST_USER, 0)
    for taken in (worker_user(INGEST_USER, 0), worker_user(INGEST_USER, 1), ALERTS_USER):
        assert str(connect_answer(scene.attacker_url, taken)) == NOT_AUTHORIZED, taken
    scene.assert_victim_untouched()


def test_a_bridge_with_another_bridges_client_id_is_refused_and_disconnects_nobody(
    scene: Scene,
) -> None:
    assert str(connect_answer(scene.attacker_url, scene.victim_bridge)) == NOT_AUTHORIZED
    # The victim's user name with the attacker's password: no better.
    endpoint = MqttEndpoint.parse(scene.attacker_url)
    as_victim = scene.services.url(scene.victim_bridge, endpoint.password or "")
    assert str(connect_answer(as_victim, scene.victim_bridge)) == NOT_AUTHORIZED
    scene.assert_victim_untouched()


def test_debians_mosquitto_sub_cannot_take_over_ingests_session(scene: Scene) -> None:
    """The same, with the broker's own command-line client: a persistent session (-c) as
    ingest-0 is refused (mosquitto_sub exits with 'not authorised')."""
    binary = shutil.which("mosquitto_sub")
    assert binary is not None, "mosquitto_sub missing: run scripts/bootstrap (mosquitto-clients)"
    endpoint = MqttEndpoint.parse(scene.attacker_url)
    run = subprocess.run(
        [
            binary,
            *("-h", endpoint.host, "-p", str(endpoint.port), "-V", "mqttv5"),
            *("-u", endpoint.username or "", "-P", endpoint.password or ""),
            *("-i", worker_user(INGEST_USER, 0), "-c", "-x", "3600"),
            *("-t", shared("glucose/v1/bridges/+/readings", "ingest"), "-q", "1"),
            *("-C", "1", "-W", "5"),
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert run.returncode != 0
    assert "not authori" in (run.stdout + run.stderr).lower()
    assert run.stdout == ""  # not one reading came through
    scene.assert_victim_untouched()


def test_a_bridge_subscribing_to_ingests_share_group_or_others_topics_receives_nothing(
    scene: Scene,
) -> None:
    victim_topics = [
        readings_topic(scene.victim_bridge),
        acks_topic(scene.victim_bridge),
        status_topic(scene.victim_bridge),
        patient_alerts_topic(str(scene.victim.patient_id)),
    ]
    with Probe(scene.attacker_url, scene.attacker_bridge) as attacker:
        assert not attacker.connect().is_failure
        for topic in FORBIDDEN_FILTERS + victim_topics:
            assert str(attacker.subscribe(topic)) == NOT_AUTHORIZED, topic
        # The victim syncs, a low among the readings raises an alert on their topic.
        scene.victim_sends()
        scene.victim_sends(mg_dl=45)
        wait_for(lambda: len(scene.victims_alerts()) == 1)
        low = scene.victims_alerts()
        scene.victim_sends()
        assert attacker.received == []
    # Everything the victim sent was stored: the attacker swallowed no share of it.
    readings_now = scene.victims_readings()
    assert len(readings_now) == sum(len(b.readings) for b in scene.sent)
    assert [a["kind"] for a in low] == ["low"]
    with psycopg.connect(scene.database) as conn:  # acknowledge, so the rest holds
        conn.execute("DELETE FROM alert_deliveries")
        conn.execute("DELETE FROM alerts")
    scene.assert_victim_untouched()


def test_debians_mosquitto_pub_cannot_publish_on_another_bridges_topic(scene: Scene) -> None:
    binary = shutil.which("mosquitto_pub")
    assert binary is not None, "mosquitto_pub missing: run scripts/bootstrap (mosquitto-clients)"
    endpoint = MqttEndpoint.parse(scene.attacker_url)
    forged = batch(scene.victim_bridge, VICTIM_METER, readings(1)).to_json().decode()
    run = subprocess.run(
        [
            binary,
            *("-h", endpoint.host, "-p", str(endpoint.port), "-V", "mqttv5", "-q", "1"),
            *("-u", endpoint.username or "", "-P", endpoint.password or ""),
            *("-i", scene.attacker_bridge, "-t", readings_topic(scene.victim_bridge)),
            "-s",
        ],
        input=forged,
        capture_output=True,
        text=True,
        timeout=30,
    )
    # MQTT v5: the broker answers the publish with "not authorized" (PUBACK reason 135).
    assert "not authori" in (run.stdout + run.stderr).lower(), run
    scene.assert_victim_untouched()


def test_a_bridge_naming_another_patients_meter_changes_nothing_in_their_record(
    scene: Scene,
) -> None:
    # The attacker's bridge sends very low readings as if from the victim's meter, on its
    # own topic (the only one it may use).
    forged = batch(
        scene.attacker_bridge,
        VICTIM_METER,
        [r.model_copy(update={"value": 40.0}) for r in readings(3)],
    )
    with Uplink(scene.attacker_url, scene.attacker_bridge) as attacker:
        attacker.publish(forged)
        attacker.wait_confirmed([forged.batch_id], CONFIRM_TIMEOUT_S)
        # Then a low from the attacker's own claimed meter: once the alerts worker has raised
        # the attacker's alert, it has certainly evaluated the forged readings before it.
        own = batch(
            scene.attacker_bridge,
            ATTACKER_METER,
            [r.model_copy(update={"value": 45.0}) for r in readings(1)],
        )
        attacker.publish(own)
        attacker.wait_confirmed([own.batch_id], CONFIRM_TIMEOUT_S)
    theirs = f"/api/v1/patients/{scene.attacker.patient_id}"
    wait_for(
        lambda: (
            len(scene.client.get(f"{theirs}/alerts", headers=scene.attacker.auth).json()["items"])
            == 1
        )
    )
    # The forged readings belong to the attacker (the bridge's patient), held until the
    # attacker claims the serial, counted nowhere; the victim has none of them.
    with psycopg.connect(scene.database) as conn:
        rows = conn.execute(
            "SELECT patient_id, awaiting_claim FROM readings WHERE sender = %s AND device = %s",
            (scene.attacker_bridge, VICTIM_METER),
        ).fetchall()
    assert rows == [(scene.attacker.patient_id, True)] * 3
    scene.assert_victim_untouched()
