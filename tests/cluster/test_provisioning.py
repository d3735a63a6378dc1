"""Bridges and home displays registered through the API on the RabbitMQ deployment
(`GLUCOBRIDGE_BROKER=rabbitmq`): the API provisions them through the nodes' management HTTP
API, any node's (the next when one does not answer). A registered bridge delivers end to
end; a revoked one is disconnected at once and refused on every node from then on. A display
reads only its own patient's alerts."""

from __future__ import annotations

import time

import httpx
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from core.contract import patient_alerts_topic
from core.mqtt_client import release
from ingest.amqp_worker import AmqpWorker
from stack.cluster import ClusterServices
from stack.proc import free_port
from stack.rabbitmq import mqtt_url
from tests.api.owner import owner_auth
from tests.cluster.test_trust import Intruder
from tests.support import HTTP_TIMEOUT_S, CourierBridge, add_patient, batch, readings, serve_api

SERIAL = "SN-RABBIT-API-1"
ANSWER_TIMEOUT_S = 10.0


def _connack(user: str, password: str, port: int) -> ReasonCode | None:
    """The broker's answer to a fresh MQTT 3.1.1 connection as `user` (None: no answer)."""
    answers: list[ReasonCode] = []
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=user, protocol=mqtt.MQTTv311)
    client.username_pw_set(user, password)
    client.on_connect = lambda _c, _u, _f, reason, _p: answers.append(reason)
    try:
        client.connect("127.0.0.1", port, 30)
        deadline = time.monotonic() + ANSWER_TIMEOUT_S
        while not answers and time.monotonic() < deadline:
            if client.loop(0.05) != mqtt.MQTT_ERR_SUCCESS:
                break
        if answers and not answers[0].is_failure:
            client.disconnect()
    finally:
        release(client)
    return answers[0] if answers else None


def test_a_bridge_registered_through_the_api_delivers_and_once_revoked_is_refused(
    services: ClusterServices, amqp_worker: AmqpWorker
) -> None:
    rabbit = services.rabbit
    patient = add_patient(services.database_url, "Rabbit patient", SERIAL)
    auth = owner_auth(services.database_url, patient)
    with (
        serve_api(services.api_settings()) as base_url,
        httpx.Client(base_url=base_url, timeout=HTTP_TIMEOUT_S) as api,
    ):
        answer = api.post(
            f"/api/v1/patients/{patient}/bridges", json={"name": "rabbit"}, headers=auth
        )
        assert answer.status_code == 201, answer.text
        creds = answer.json()
        bridge_id, password = creds["mqtt_username"], creds["mqtt_password"]

        # End to end: the bridge, with every node in its URL, is confirmed by ingest.
        bridge = CourierBridge(
            mqtt_url(bridge_id, password, rabbit.mqtt_ports), bridge_id, broker="rabbitmq"
        )
        try:
            bridge.put(batch(bridge_id, SERIAL, readings(3)))
            bridge.delivered()
        finally:
            bridge.close()
        page = api.get(f"/api/v1/patients/{patient}/readings", headers=auth).json()
        assert len(page["items"]) == 3

        # Connected to the second node when revoked (the API asks the first): dropped.
        live = Intruder(bridge_id, password, rabbit.mqtt_ports[1])
        try:
            revoked = api.delete(f"/api/v1/patients/{patient}/bridges/{bridge_id}", headers=auth)
            assert revoked.status_code == 204, revoked.text
            assert live.run_until(lambda: live.gone), "the revoked bridge stayed connected"
        finally:
            live.close()
        for port in rabbit.mqtt_ports:
            refused = _connack(bridge_id, password, port)
            assert refused is not None and refused.is_failure, f"node :{port} let it in"
        # Revoking again is fine (idempotent), as on Mosquitto.
        again = api.delete(f"/api/v1/patients/{patient}/bridges/{bridge_id}", headers=auth)
        assert again.status_code == 204, again.text


def test_a_display_reads_only_its_patients_alerts_until_revoked(
    services: ClusterServices,
) -> None:
    rabbit = services.rabbit
    patient = add_patient(services.database_url, "Display patient", "SN-RABBIT-DISPLAY")
    other = add_patient(services.database_url, "Someone else", "SN-RABBIT-OTHER")
    auth = owner_auth(services.database_url, patient)
    # The first node the API's URL names does not answer: the next one provisions.
    userinfo, _, nodes = rabbit.management_url.rpartition("@")
    settings = services.api_settings().model_copy(
        update={"rabbitmq_admin_url": f"{userinfo}@127.0.0.1:{free_port()},{nodes}"}
    )
    with (
        serve_api(settings) as base_url,
        httpx.Client(base_url=base_url, timeout=HTTP_TIMEOUT_S) as api,
    ):
        answer = api.post(f"/api/v1/patients/{patient}/displays", json={}, headers=auth)
        assert answer.status_code == 201, answer.text
        creds = answer.json()
        user, password = creds["mqtt_username"], creds["mqtt_password"]
        display = Intruder(user, password, rabbit.mqtt_ports[2])
        try:
            assert not display.subscribe_refused(patient_alerts_topic(patient))
            assert display.subscribe_refused(patient_alerts_topic(other))
        finally:
            display.close()
        display = Intruder(user, password, rabbit.mqtt_ports[0])
        try:
            revoked = api.delete(f"/api/v1/patients/{patient}/displays/{user}", headers=auth)
            assert revoked.status_code == 204, revoked.text
            assert display.run_until(lambda: display.gone), "the revoked display stayed"
        finally:
            display.close()
        refused = _connack(user, password, rabbit.mqtt_ports[1])
        assert refused is not None and refused.is_failure
