"""The local stack itself: TimescaleDB storage, migrations, and the broker's ACL."""

from __future__ import annotations

import threading

import paho.mqtt.client as mqtt
import psycopg
import pytest
from click.testing import CliRunner
from paho.mqtt.enums import CallbackAPIVersion

from core.contract import readings_topic
from core.settings import MqttEndpoint
from stack.cli import cli
from stack.local import Services
from tests.support import Bridge, batch, readings


def test_readings_table_is_a_timescaledb_hypertable(services: Services) -> None:
    with psycopg.connect(services.database_url) as conn:
        row = conn.execute(
            "SELECT d.column_name FROM timescaledb_information.dimensions d"
            " WHERE d.hypertable_name = 'readings'"
        ).fetchone()
    assert row == ("measured_at",)


def test_db_upgrade_applies_once_and_then_reports_up_to_date(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GLUCOBRIDGE_DATABASE_URL", services.database_url)
    result = CliRunner().invoke(cli, ["db", "upgrade"])
    assert result.exit_code == 0, result.output
    assert "schema is up to date" in result.output
    with psycopg.connect(services.database_url) as conn:
        versions = [r[0] for r in conn.execute("SELECT version FROM schema_migrations")]
    assert versions == sorted(set(versions)) and versions[0] == 1


def _listen(services: Services, topic: str) -> tuple[mqtt.Client, list[bytes]]:
    endpoint = MqttEndpoint.parse(services.mqtt_url)
    received: list[bytes] = []
    subscribed = threading.Event()
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id="acl-listener", protocol=mqtt.MQTTv5
    )
    client.username_pw_set(endpoint.username, endpoint.password)
    client.on_message = lambda _c, _u, msg: received.append(msg.payload)
    client.on_subscribe = lambda *_: subscribed.set()
    client.connect(endpoint.host, endpoint.port)
    client.loop_start()
    client.subscribe(topic, qos=1)
    assert subscribed.wait(10)
    return client, received


def test_a_bridge_can_publish_only_under_its_own_id(services: Services) -> None:
    listener, received = _listen(services, "glucose/v1/bridges/+/readings")
    try:
        with Bridge.connect(services, "home-acl-a") as a:
            a.client.publish(readings_topic("home-acl-b"), b"forged", qos=1).wait_for_publish(5)
            a.publish(batch("home-acl-a", "SN-ACL", readings(1))).wait_for_publish(5)
            # The broker delivers in order: once a's own message is in, the forged one is
            # known to have been dropped rather than delayed.
            deadline = threading.Event()
            for _ in range(100):
                if received:
                    break
                deadline.wait(0.05)
    finally:
        listener.disconnect()
        listener.loop_stop()
    assert len(received) == 1 and b"forged" not in received[0]


def test_the_broker_refuses_a_wrong_password(services: Services) -> None:
    services.add_bridge("home-acl-c")
    endpoint = MqttEndpoint.parse(services.mqtt_url)
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="intruder", protocol=mqtt.MQTTv5)
    client.username_pw_set("home-acl-c", "not-the-password")
    outcome: list[mqtt.ReasonCode] = []
    done = threading.Event()

    def on_connect(
        _c: mqtt.Client, _u: object, _f: object, reason: mqtt.ReasonCode, _p: object
    ) -> None:
        outcome.append(reason)
        done.set()

    client.on_connect = on_connect
    client.connect(endpoint.host, endpoint.port)
    client.loop_start()
    try:
        assert done.wait(10)
    finally:
        client.loop_stop()
    assert outcome[0].is_failure
