"""Bridges provisioned in a real Mosquitto (dynamic security) and revoked: the broker then
refuses them. Meters claimed by serial take their held readings with them."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import httpx
import psycopg
import pytest

from core.settings import IngestSettings
from device.uplink import Uplink, UplinkError
from ingest.worker import Worker
from tests.api.broker import DynsecMosquitto
from tests.api.conftest import Cast
from tests.support import CONFIRM_TIMEOUT_S, batch, readings, wait_for


@pytest.fixture
def dynsec_ingest(dynsec: DynsecMosquitto, database: str) -> Iterator[Worker]:
    """A real ingest worker on the dynamic-security broker, as the ingest role allows."""
    worker = Worker(
        IngestSettings(database_url=database, mqtt_url=dynsec.ingest_url, client_id="dynsec-w")
    )
    thread = threading.Thread(target=worker.run, name="ingest-dynsec", daemon=True)
    thread.start()
    wait_for(lambda: worker.ready, timeout=10)  # subscribed: the ingest role's ACL holds
    yield worker
    worker.stop(leave=True)
    thread.join(10)
    assert not thread.is_alive(), "ingest worker did not stop"


def test_a_revoked_bridge_is_refused_by_the_broker(
    client: httpx.Client, cast: Cast, dynsec: DynsecMosquitto, dynsec_ingest: Worker
) -> None:
    patient = cast.patient
    registered = client.post(
        f"/api/v1/patients/{patient.patient_id}/bridges",
        json={"bridge_id": "home-revoke-1", "label": "kitchen"},
        headers=patient.auth,
    )
    assert registered.status_code == 201, registered.text
    creds = registered.json()
    url = dynsec.url(creds["mqtt_username"], creds["mqtt_password"])
    client.post(
        f"/api/v1/patients/{patient.patient_id}/meters",
        json={"serial": "SN-BRIDGE-1"},
        headers=patient.auth,
    )

    disconnected = threading.Event()
    with Uplink(url, "home-revoke-1") as uplink:
        sent = batch("home-revoke-1", "SN-BRIDGE-1", readings(3))
        uplink.publish(sent)
        uplink.wait_confirmed([sent.batch_id], CONFIRM_TIMEOUT_S)  # stored end to end
        uplink.client.on_disconnect = lambda *_args: disconnected.set()

        revoked = client.delete(
            f"/api/v1/patients/{patient.patient_id}/bridges/home-revoke-1",
            headers=patient.auth,
        )
        assert revoked.status_code == 204, revoked.text
        # The broker drops the live connection at once...
        assert disconnected.wait(10), "the broker kept the revoked bridge connected"
    # ...and refuses the credentials from then on.
    with pytest.raises(UplinkError, match="did not accept"), Uplink(url, "home-revoke-1"):
        pass

    page = client.get(
        f"/api/v1/patients/{patient.patient_id}/readings", headers=patient.auth
    ).json()
    assert len(page["items"]) == 3
    bridges = client.get(
        f"/api/v1/patients/{patient.patient_id}/bridges", headers=patient.auth
    ).json()["items"]
    assert [(b["id"], b["revoked_at"] is not None) for b in bridges] == [("home-revoke-1", True)]
    taken = client.post(
        f"/api/v1/patients/{patient.patient_id}/bridges",
        json={"bridge_id": "home-revoke-1"},
        headers=patient.auth,
    )
    assert taken.status_code == 409  # ids are never reused


def test_a_bridge_may_publish_only_under_its_own_id(
    client: httpx.Client, cast: Cast, dynsec: DynsecMosquitto, dynsec_ingest: Worker
) -> None:
    patient = cast.patient
    creds = client.post(
        f"/api/v1/patients/{patient.patient_id}/bridges",
        json={"bridge_id": "home-own-1"},
        headers=patient.auth,
    ).json()
    url = dynsec.url(creds["mqtt_username"], creds["mqtt_password"])
    with Uplink(url, "home-own-1") as uplink:
        forged = batch("home-other-9", "SN-FORGED", readings(1))
        uplink.publish(forged)  # on home-other-9's topic: the broker drops it
        own = batch("home-own-1", "SN-OWN", readings(1))
        uplink.publish(own)
        uplink.wait_confirmed([own.batch_id], CONFIRM_TIMEOUT_S)
    with psycopg.connect(cast.database_url) as conn:
        serials = {r[0] for r in conn.execute("SELECT device FROM readings")}
    assert serials == {"SN-OWN"}


def test_claiming_a_meter_attaches_its_held_readings(
    client: httpx.Client, cast: Cast, dynsec: DynsecMosquitto, dynsec_ingest: Worker
) -> None:
    patient = cast.patient
    creds = client.post(
        f"/api/v1/patients/{patient.patient_id}/bridges",
        json={"bridge_id": "home-claim-1"},
        headers=patient.auth,
    ).json()
    with Uplink(dynsec.url(creds["mqtt_username"], creds["mqtt_password"]), "home-claim-1") as up:
        held = batch("home-claim-1", "SN-HELD-1", readings(4))
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
    # told nothing about whether anyone else has the meter.
    other = cast["other_patient"]
    stolen = client.post(
        f"/api/v1/patients/{other.patient_id}/meters",
        json={"serial": "SN-HELD-1"},
        headers=other.auth,
    )
    assert stolen.status_code == 200
    assert stolen.json()["attached_readings"] == 0
    theirs = f"/api/v1/patients/{other.patient_id}/readings"
    assert client.get(theirs, headers=other.auth).json()["items"] == []
    assert len(client.get(url, headers=patient.auth).json()["items"]) == 4
