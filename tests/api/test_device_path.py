"""The whole device path on the one broker set-up (issue 11, acceptance 2): a patient
registers a bridge and a home display through the API, which provisions both in the broker
(dynamic security); the bridge delivers readings, the ingest worker (user `ingest-0`) stores
and confirms them, the alerts worker (user `alerts`) raises a low and publishes it, and the
display receives it on the patient's alerts topic."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import httpx

from core.contract import patient_alerts_topic
from device.uplink import Uplink
from ingest.alerts.worker import AlertsWorker
from ingest.worker import Worker
from stack.local import Services
from tests.api.conftest import Cast
from tests.mqtt_client import Probe
from tests.support import CONFIRM_TIMEOUT_S, batch, readings, wait_for


def test_bridge_to_ingest_to_alerts_to_the_home_display(
    client: httpx.Client,
    cast: Cast,
    services: Services,
    ingest_worker: Worker,
    alerts_worker: AlertsWorker,
) -> None:
    patient = cast.patient
    base = f"/api/v1/patients/{patient.patient_id}"
    bridge = client.post(f"{base}/bridges", json={"name": "home"}, headers=patient.auth).json()
    display = client.post(f"{base}/displays", json={"label": "bedside"}, headers=patient.auth)
    assert display.status_code == 201, display.text
    shown = display.json()
    assert shown["alerts_topic"] == patient_alerts_topic(str(patient.patient_id))
    claim = client.post(f"{base}/meters", json={"serial": "SN-PATH-1"}, headers=patient.auth)
    assert claim.status_code == 200

    display_url = services.url(shown["mqtt_username"], shown["mqtt_password"])
    bridge_url = services.url(bridge["mqtt_username"], bridge["mqtt_password"])
    with Probe(display_url, shown["mqtt_username"]) as screen:
        assert not screen.connect().is_failure
        assert str(screen.subscribe(shown["alerts_topic"])) == "Granted QoS 1"
        # Fingersticks 5 minutes apart, the last 20 minutes ago: one low episode.
        start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=30)
        items = [
            r.model_copy(
                update={
                    "value": value,
                    "measured_at": start + i * timedelta(minutes=5),
                    "meter_time": (start + i * timedelta(minutes=5)).replace(tzinfo=None),
                }
            )
            for i, (r, value) in enumerate(zip(readings(3), [120.0, 62.0, 58.0], strict=True))
        ]
        with Uplink(bridge_url, bridge["bridge_id"]) as uplink:
            sent = batch(bridge["bridge_id"], "SN-PATH-1", items)
            uplink.publish(sent)
            ack = uplink.wait_confirmed([sent.batch_id], CONFIRM_TIMEOUT_S)
        wait_for(lambda: len(screen.received) >= 1)
    assert [a.stored for a in ack] == [3]
    alert = json.loads(screen.received[0].payload)
    assert (alert["kind"], alert["level"], alert["patient_id"]) == (
        "low",
        1,  # 62 and 58 mg/dL: below 70, not below 54
        str(patient.patient_id),
    )
    listed = client.get(f"{base}/alerts", headers=patient.auth).json()["items"]
    assert [(a["id"], a["kind"]) for a in listed] == [(alert["alert_id"], "low")]

    # Revoked, the display is cut off at once and refused from then on.
    revoked = client.delete(f"{base}/displays/{shown['display_id']}", headers=patient.auth)
    assert revoked.status_code == 204
    with Probe(display_url, shown["mqtt_username"]) as again:
        assert str(again.connect()) == "Not authorized"
    displays = client.get(f"{base}/displays", headers=patient.auth).json()["items"]
    assert [(d["label"], d["revoked_at"] is not None) for d in displays] == [("bedside", True)]
