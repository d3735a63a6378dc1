"""The trust rules on the RabbitMQ deployment, tried with an independent MQTT 3.1.1 client
(plain paho, none of the bridge's code): a bridge cannot publish under another bridge's
prefix, nor read another bridge's acks, nor subscribe to everyone's."""

from __future__ import annotations

import time
from collections.abc import Callable

import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from core.contract import acks_topic, readings_topic
from core.mqtt_client import release
from ingest.amqp_worker import AmqpWorker
from stack.cluster import ClusterServices
from tests.support import CourierBridge, batch, readings

ANSWER_TIMEOUT_S = 10.0


class Intruder:
    """A plain paho client signed in as bridge `user`, with its client id (the only one
    whose session queues the bridge's user may use), recording what the broker does. The
    test drives its network loop itself: nothing happens behind its back."""

    def __init__(self, user: str, password: str, port: int) -> None:
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=user, protocol=mqtt.MQTTv311
        )
        self.client.username_pw_set(user, password)
        self.connected = False
        self.gone = False
        self.subacks: dict[int, list[ReasonCode]] = {}
        self.received: list[tuple[str, bytes]] = []
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = lambda _c, _u, m: self.received.append((m.topic, bytes(m.payload)))
        self.client.connect("127.0.0.1", port, 30)
        assert self.run_until(lambda: self.connected), "the broker did not accept the bridge"

    def _on_connect(
        self, _c: mqtt.Client, _u: object, _f: object, reason: ReasonCode, _p: object
    ) -> None:
        self.connected = not reason.is_failure

    def _on_disconnect(self, *_args: object) -> None:
        self.gone = True

    def _on_subscribe(
        self, _c: mqtt.Client, _u: object, mid: int, reasons: list[ReasonCode], _p: object
    ) -> None:
        self.subacks[mid] = reasons

    def run_until(self, done: Callable[[], bool], timeout: float = ANSWER_TIMEOUT_S) -> bool:
        deadline = time.monotonic() + timeout
        while not done() and time.monotonic() < deadline:
            if self.client.loop(0.05) != mqtt.MQTT_ERR_SUCCESS:
                self.gone = True
        return done()

    def subscribe_refused(self, topic: str) -> bool:
        """Whether the broker refused the subscription (a failure SUBACK or a disconnect)."""
        _rc, mid = self.client.subscribe(topic, qos=1)
        self.run_until(lambda: self.gone or mid in self.subacks)
        if self.gone:
            return True
        return all(r.is_failure for r in self.subacks[mid])

    def close(self) -> None:
        if not self.gone:
            self.client.disconnect()
            self.run_until(lambda: self.gone, timeout=1.0)
        release(self.client)


def _stored_serials(database_url: str) -> set[str]:
    with psycopg.connect(database_url) as conn:
        return {r[0] for r in conn.execute("SELECT DISTINCT device FROM readings")}


def test_a_bridge_cannot_publish_as_another_nor_read_its_acks(
    services: ClusterServices, amqp_worker: AmqpWorker
) -> None:
    rabbit = services.rabbit
    services.add_bridge("trust-victim")
    services.add_bridge("trust-intruder")
    intruder_password = rabbit.bridges["trust-intruder"]

    # Publishing under the victim's prefix: the broker refuses (closes the connection) and
    # nothing reaches ingest.
    forger = Intruder("trust-intruder", intruder_password, rabbit.mqtt_ports[1])
    try:
        forged = batch("trust-victim", "forged-meter", readings(3))
        forger.client.publish(readings_topic("trust-victim"), forged.to_json(), qos=1)
        assert forger.run_until(lambda: forger.gone), "the broker let the forged publish pass"
    finally:
        forger.close()

    # Reading the victim's acks, or everyone's: refused.
    reader = Intruder("trust-intruder", intruder_password, rabbit.mqtt_ports[2])
    try:
        assert reader.subscribe_refused(acks_topic("trust-victim"))
    finally:
        reader.close()
    wildcard = Intruder("trust-intruder", intruder_password, rabbit.mqtt_ports[0])
    try:
        assert wildcard.subscribe_refused(acks_topic("+"))
    finally:
        wildcard.close()

    # Its own acks it may read, and the victim's readings still arrive and are confirmed,
    # with no copy reaching the intruder.
    own = Intruder("trust-intruder", intruder_password, rabbit.mqtt_ports[0])
    try:
        assert not own.subscribe_refused(acks_topic("trust-intruder"))
        victim = CourierBridge(rabbit.bridge_url("trust-victim"), "trust-victim", broker="rabbitmq")
        try:
            victim.put(batch("trust-victim", "victim-meter", readings(5)))
            victim.delivered()
        finally:
            victim.close()
        own.run_until(lambda: bool(own.received), timeout=1.0)
        assert own.received == []
    finally:
        own.close()
    assert _stored_serials(services.database_url) == {"victim-meter"}
