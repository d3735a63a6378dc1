"""Bridges registered through the API are provisioned in the session's broker (dynamic
security, the stack's one set-up) and revoked: the broker then refuses them. Registration says
nothing about anyone else's bridges, and a bridge's id can be neither a patient's id nor a
service's name. Meters claimed by serial take the patient's own held readings with them."""

from __future__ import annotations

import threading
import uuid

import httpx
import psycopg
import pytest

from device.uplink import Uplink
from ingest.worker import Worker
from stack.local import Services
from tests.api.conftest import Cast, Person
from tests.mqtt_client import connect_answer
from tests.support import CONFIRM_TIMEOUT_S, batch, readings, wait_for


def register(
    client: httpx.Client, services: Services, person: Person, **body: str
) -> tuple[str, str]:
    """The patient registers a bridge; returns its id and broker URL."""
    answer = client.post(
        f"/api/v1/patients/{person.patient_id}/bridges", json=body, headers=person.auth
    )
    assert answer.status_code == 201, answer.text
    creds = answer.json()
    assert creds["mqtt_username"] == creds["bridge_id"]
    return creds["bridge_id"], services.url(creds["mqtt_username"], creds["mqtt_password"])


def test_a_revoked_bridge_is_refused_by_the_broker(
    client: httpx.Client, cast: Cast, services: Services, ingest_worker: Worker
) -> None:
    patient = cast.patient
    bridge_id, url = register(client, services, patient, name="home-revoke", label="kitchen")
    assert bridge_id.startswith("home-revoke-")
    client.post(
        f"/api/v1/patients/{patient.patient_id}/meters",
        json={"serial": "SN-BRIDGE-1"},
        headers=patient.auth,
    )

    disconnected = threading.Event()
    with Uplink(url, bridge_id) as uplink:
        sent = batch(bridge_id, "SN-BRIDGE-1", readings(3))
        uplink.publish(sent)
        uplink.wait_confirmed([sent.batch_id], CONFIRM_TIMEOUT_S)  # stored end to end
        uplink.client.on_disconnect = lambda *_args: disconnected.set()

        revoked = client.delete(
            f"/api/v1/patients/{patient.patient_id}/bridges/{bridge_id}", headers=patient.auth
        )
        assert revoked.status_code == 204, revoked.text
        # The broker drops the live connection at once...
        assert disconnected.wait(10), "the broker kept the revoked bridge connected"
    # ...and refuses the credentials from then on.
    assert str(connect_answer(url, bridge_id)) == "Not authorized"

    page = client.get(
        f"/api/v1/patients/{patient.patient_id}/readings", headers=patient.auth
    ).json()
    assert len(page["items"]) == 3
    bridges = client.get(
        f"/api/v1/patients/{patient.patient_id}/bridges", headers=patient.auth
    ).json()["items"]
    assert [(b["id"], b["label"], b["revoked_at"] is not None) for b in bridges] == [
        (bridge_id, "kitchen", True)
    ]


def test_registering_a_bridge_says_nothing_about_other_patients_bridges(
    client: httpx.Client, cast: Cast, services: Services
) -> None:
    """Two patients asking for the same name both succeed, with ids of their own: there is no
    "taken" answer to learn from, and no id to guess from the name."""
    mine, _ = register(client, services, cast.patient, name="home")
    theirs, _ = register(client, services, cast["other_patient"], name="home")
    again, _ = register(client, services, cast.patient, name="home")
    assert len({mine, theirs, again}) == 3
    assert all(b.startswith("home-") and len(b) == len("home-") + 12 for b in (mine, theirs))
    unnamed, _ = register(client, services, cast.patient)
    assert unnamed.startswith("bridge-")


@pytest.mark.parametrize(
    "name",
    [
        "patient-id",  # replaced by the other patient's id below
        "ingest",
        "ingest-0",
        "alerts",
        "api",
        "admin-home",
        "display-1",
        "glucobridge",
        str(uuid.uuid4()),
        "Home",  # upper case: not a topic level the broker's ACLs are written for
        "home/+",
        "#",
        "",
    ],
)
def test_a_bridge_may_not_be_named_as_a_patient_or_a_service(
    client: httpx.Client, cast: Cast, name: str
) -> None:
    if name == "patient-id":
        name = str(cast["other_patient"].patient_id)
    answer = client.post(
        f"/api/v1/patients/{cast.patient.patient_id}/bridges",
        json={"name": name},
        headers=cast.patient.auth,
    )
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    with psycopg.connect(cast.database_url) as conn:
        row = conn.execute("SELECT count(*) FROM bridges").fetchone()
    assert row == (0,)


def test_a_bridge_may_publish_only_under_its_own_id(
    client: httpx.Client, cast: Cast, services: Services, ingest_worker: Worker
) -> None:
    bridge_id, url = register(client, services, cast.patient, name="home-own")
    with Uplink(url, bridge_id) as uplink:
        forged = batch("home-other-9", "SN-FORGED", readings(1))
        uplink.publish(forged)  # on home-other-9's topic: the broker drops it
        own = batch(bridge_id, "SN-OWN", readings(1))
        uplink.publish(own)
        uplink.wait_confirmed([own.batch_id], CONFIRM_TIMEOUT_S)
    with psycopg.connect(cast.database_url) as conn:
        serials = {r[0] for r in conn.execute("SELECT device FROM readings")}
    assert serials == {"SN-OWN"}


def test_claiming_a_meter_attaches_its_held_readings(
    client: httpx.Client, cast: Cast, services: Services, ingest_worker: Worker
) -> None:
    patient = cast.patient
    bridge_id, url = register(client, services, patient, name="home-claim")
    with Uplink(url, bridge_id) as up:
        held = batch(bridge_id, "SN-HELD-1", readings(4))
        up.publish(held)
        up.wait_confirmed([held.batch_id], CONFIRM_TIMEOUT_S)
    url = f"/api/v1/patients/{patient.patient_id}/readings"
    assert client.get(url, headers=patient.auth).json()["items"] == []

    claimed = client.post(
        f"/api/v1/patients/{patient.patient_id}/meters",
        json={"serial": "SN-HELD-1"},
        headers=patient.auth,
    )
    assert claimed.status_code == 200, claimed.text
    assert claimed.json()["attached_readings"] == 4
    wait_for(lambda: len(client.get(url, headers=patient.auth).json()["items"]) == 4)
    # Another patient claiming the same serial attaches nothing of this patient's, and is
    # told nothing about whether anyone else has the meter: their answer is the one a
    # never-seen serial gets.
    other = cast["other_patient"]
    stolen = client.post(
        f"/api/v1/patients/{other.patient_id}/meters",
        json={"serial": "SN-HELD-1"},
        headers=other.auth,
    )
    unseen = client.post(
        f"/api/v1/patients/{other.patient_id}/meters",
        json={"serial": "SN-NEVER-SEEN"},
        headers=other.auth,
    )
    assert stolen.status_code == unseen.status_code == 200
    strip = lambda body: {  # noqa: E731
        k: v for k, v in body.items() if k not in ("serial", "first_seen", "claimed_at")
    }
    assert strip(stolen.json()) == strip(unseen.json())
    assert stolen.json()["attached_readings"] == 0
    theirs = f"/api/v1/patients/{other.patient_id}/readings"
    assert client.get(theirs, headers=other.auth).json()["items"] == []
    assert len(client.get(url, headers=patient.auth).json()["items"]) == 4
