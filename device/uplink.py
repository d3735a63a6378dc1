"""The bridge's MQTT link: publish reading batches as this bridge, collect ingest's
confirmations. The durable outbox (which batches are still unconfirmed) sits on top of it."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterable
from types import TracebackType

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode
from pydantic import ValidationError

from core.contract import BatchAck, ReadingsBatch, acks_topic, readings_topic
from core.settings import MqttEndpoint

KEEPALIVE_S = 30
# How long to wait for the broker to accept the connection and the acks subscription.
CONNECT_TIMEOUT_S = 10.0
# A batch not confirmed this long after publishing is sent again: ingest confirms within
# milliseconds when it is healthy, so this only fires when something was lost.
RESEND_AFTER_S = 5.0


class UplinkError(RuntimeError):
    """The broker could not be reached, refused us, or confirmations did not come."""


class Uplink:
    """One MQTT connection as `bridge_id`. Acks arrive on paho's thread and are recorded."""

    def __init__(self, mqtt_url: str, bridge_id: str, client_id: str | None = None) -> None:
        self.bridge_id = bridge_id
        self.endpoint = MqttEndpoint.parse(mqtt_url)
        self.acks: dict[uuid.UUID, BatchAck] = {}
        self._changed = threading.Condition()
        self._ready = threading.Event()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id or bridge_id, protocol=mqtt.MQTTv5
        )
        if self.endpoint.username:
            self.client.username_pw_set(self.endpoint.username, self.endpoint.password)
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message

    def _on_connect(
        self, client: mqtt.Client, _u: object, _f: object, reason: ReasonCode, _p: object
    ) -> None:
        if not reason.is_failure:
            client.subscribe(acks_topic(self.bridge_id), qos=1)

    def _on_subscribe(
        self, _c: mqtt.Client, _u: object, _m: int, reasons: list[ReasonCode], _p: object
    ) -> None:
        if reasons and not reasons[0].is_failure:
            self._ready.set()

    def _on_message(self, _c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        try:
            ack = BatchAck.model_validate_json(msg.payload)
        except ValidationError:
            return  # not a confirmation we understand; the batch stays unconfirmed
        with self._changed:
            self.acks[ack.batch_id] = ack
            self._changed.notify_all()

    def __enter__(self) -> Uplink:
        try:
            self.client.connect(self.endpoint.host, self.endpoint.port, KEEPALIVE_S)
        except OSError as exc:
            raise UplinkError(f"broker {self.endpoint.host}:{self.endpoint.port}: {exc}") from exc
        self.client.loop_start()
        if not self._ready.wait(CONNECT_TIMEOUT_S):
            self.close()
            raise UplinkError(f"broker did not accept bridge {self.bridge_id!r}")
        return self

    def __exit__(
        self, _t: type[BaseException] | None, _e: BaseException | None, _tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def publish(self, batch: ReadingsBatch) -> mqtt.MQTTMessageInfo:
        return self.publish_raw(batch.to_json())

    def publish_raw(self, payload: bytes) -> mqtt.MQTTMessageInfo:
        return self.client.publish(readings_topic(self.bridge_id), payload, qos=1)

    def deliver(
        self, batches: list[ReadingsBatch], timeout: float, resend_after: float = RESEND_AFTER_S
    ) -> list[BatchAck]:
        """Publish and re-publish until ingest confirms every batch stored.

        The broker's PUBACK is not enough: with no consumer subscribed yet, or one far
        behind, a broker acknowledges a publish and drops it. Duplicates are harmless.
        """
        deadline = time.monotonic() + timeout
        while True:
            unconfirmed = [b for b in batches if b.batch_id not in self.acks]
            for batch in unconfirmed:
                self.publish(batch)
            left = deadline - time.monotonic()
            try:
                return self.wait_confirmed(
                    [b.batch_id for b in batches], max(0.0, min(resend_after, left))
                )
            except UplinkError:
                if time.monotonic() >= deadline:
                    raise

    def wait_confirmed(self, batch_ids: Iterable[uuid.UUID], timeout: float) -> list[BatchAck]:
        wanted = set(batch_ids)
        with self._changed:
            if not self._changed.wait_for(lambda: wanted <= self.acks.keys(), timeout):
                missing = len(wanted - self.acks.keys())
                raise UplinkError(
                    f"{missing} of {len(wanted)} batches not confirmed in {timeout} s"
                )
            return [self.acks[b] for b in wanted]
