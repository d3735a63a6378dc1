"""A hand-written MQTT client for tests that play the attacker (or a home display): paho
directly, with whatever client id, session flag and subscriptions the test chooses, and every
answer of the broker (CONNACK, SUBACK, PUBACK reason codes, disconnections) kept to assert on.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from core.mqtt_client import release
from core.settings import MqttEndpoint

# The broker answers CONNECT, SUBSCRIBE and PUBLISH within milliseconds here.
ANSWER_TIMEOUT_S = 10.0


@dataclass
class Received:
    topic: str
    payload: bytes


@dataclass
class Probe:
    url: str
    client_id: str
    clean_start: bool = True
    connack: ReasonCode | None = None
    received: list[Received] = field(default_factory=list)
    disconnects: list[str] = field(default_factory=list)
    _client: mqtt.Client | None = None
    _connected: threading.Event = field(default_factory=threading.Event)
    _subacks: dict[int, list[ReasonCode]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def connect(self) -> ReasonCode:
        """Connect and wait for the broker's answer (success or refusal)."""
        endpoint = MqttEndpoint.parse(self.url)
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=self.client_id, protocol=mqtt.MQTTv5
        )
        client.username_pw_set(endpoint.username, endpoint.password)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe
        # paho must not reconnect behind the test's back: one attempt, one answer.
        client.reconnect_delay_set(min_delay=3600, max_delay=3600)
        self._client = client
        client.connect(endpoint.host, endpoint.port, clean_start=self.clean_start)
        client.loop_start()
        assert self._connected.wait(ANSWER_TIMEOUT_S), "the broker never answered CONNECT"
        assert self.connack is not None
        return self.connack

    @property
    def client(self) -> mqtt.Client:
        assert self._client is not None, "not connected"
        return self._client

    def subscribe(self, topic: str) -> ReasonCode:
        """Subscribe at QoS 1; the broker's SUBACK reason code (granted or refused)."""
        result, mid = self.client.subscribe(topic, qos=1)
        assert result == mqtt.MQTT_ERR_SUCCESS
        deadline = time.monotonic() + ANSWER_TIMEOUT_S
        while time.monotonic() < deadline:
            with self._lock:
                if mid in self._subacks:
                    return self._subacks[mid][0]
            time.sleep(0.01)
        raise AssertionError(f"no SUBACK for {topic}")

    def publish(self, topic: str, payload: bytes) -> mqtt.MQTTMessageInfo:
        info = self.client.publish(topic, payload, qos=1)
        info.wait_for_publish(ANSWER_TIMEOUT_S)
        return info

    def close(self) -> None:
        if self._client is not None:
            self._client.disconnect()
            self._client.loop_stop()
            release(self._client)

    def __enter__(self) -> Probe:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- paho callbacks ------------------------------------------------------------------
    def _on_connect(
        self, _c: mqtt.Client, _u: object, _f: object, reason: ReasonCode, _p: object
    ) -> None:
        self.connack = reason
        self._connected.set()

    def _on_disconnect(
        self, _c: mqtt.Client, _u: object, _f: object, reason: ReasonCode, _p: object
    ) -> None:
        with self._lock:
            self.disconnects.append(str(reason))

    def _on_message(self, _c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.received.append(Received(msg.topic, bytes(msg.payload)))

    def _on_subscribe(
        self, _c: mqtt.Client, _u: object, mid: int, reasons: list[ReasonCode], _p: object
    ) -> None:
        with self._lock:
            self._subacks[mid] = reasons


def connect_answer(url: str, client_id: str) -> ReasonCode:
    """Try to connect; the broker's answer, after closing whatever it was."""
    with Probe(url, client_id, clean_start=False) as attempt:
        return attempt.connect()
