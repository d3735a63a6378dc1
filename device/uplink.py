"""The bridge's MQTT link: publish reading batches as this bridge, collect ingest's
confirmations, keep a retained status with a last will. The durable outbox and the decision
of what to (re-)send sit on top of it (device.courier, the one delivery mechanism).

The network runs on one thread of ours, in one visible loop: connect, serve the socket
until the connection drops, wait a backoff delay (core.backoff), connect again. The delay
stays under a second, so the bridge is back within a second of the broker's return.
Confirmations and PUBACK reason codes are handed to listeners from that thread; they must
hand them on, not block. `mqtts://` connects over TLS, trusting the CA file given.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode
from pydantic import ValidationError

from core.backoff import backoff_delay
from core.contract import (
    STATUS_SCHEMA,
    BatchAck,
    Confirmations,
    ReadingsBatch,
    acks_topic,
    readings_topic,
    status_topic,
)
from core.mqtt_client import release
from core.settings import MqttEndpoint

log = logging.getLogger(__name__)

KEEPALIVE_S = 30
# How long to wait for the broker to accept the connection and the acks subscription.
CONNECT_TIMEOUT_S = 10.0
# One pass of the network loop waits at most this long on the socket, so stopping is prompt.
LOOP_TIMEOUT_S = 0.1
# Reconnect delays (with full jitter): first retries quick, never more than a second apart,
# so the bridge is back within a second of the broker's return. A refused connection costs
# the broker next to nothing; the jitter keeps a city of bridges from arriving in step.
RECONNECT_BASE_S = 0.1
RECONNECT_CAP_S = 1.0
# Confirmations kept for `wait_confirmed`, newest last: enough for any one wait (a sync is a
# few batches, a test's burst a few thousand), bounded so a bridge running for months does
# not grow without limit.
MAX_KEPT_ACKS = 10_000
# paho's window of QoS 1 publishes awaiting PUBACK, and its queue behind it. Both far
# below the 65,535 message ids MQTT has; the courier keeps fewer batches than this unconfirmed.
MAX_INFLIGHT_PUBLISHES = 100
MAX_QUEUED_PUBLISHES = 10_000
# How long closing waits for the "offline" status to reach the broker.
CLOSE_TIMEOUT_S = 2.0


class UplinkError(RuntimeError):
    """The broker could not be reached, refused us, or confirmations did not come."""


def status_payload(bridge_id: str, state: str) -> bytes:
    return json.dumps(
        {
            "schema": STATUS_SCHEMA,
            "bridge_id": bridge_id,
            "state": state,
            "at": datetime.now(UTC).isoformat(),
        }
    ).encode()


class Uplink:
    """One MQTT connection as `bridge_id`, reconnecting by itself until closed."""

    def __init__(
        self,
        mqtt_url: str,
        bridge_id: str,
        client_id: str | None = None,
        *,
        ca_file: Path | None = None,
    ) -> None:
        self.bridge_id = bridge_id
        self.endpoint = MqttEndpoint.parse(mqtt_url, tls_allowed=True)
        self.acks: OrderedDict[uuid.UUID, BatchAck] = OrderedDict()
        self.on_ack: Callable[[BatchAck], None] | None = None
        self.on_ready: Callable[[], None] | None = None
        # (message id, PUBACK reason code) of each QoS 1 publish the broker answered.
        self.on_published: Callable[[int, int], None] | None = None
        self.ready = threading.Event()  # connected and subscribed to the acks topic
        self.connections = 0  # how many times the broker accepted us
        self._changed = threading.Condition()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._rng = random.Random()  # noqa: S311 - jitter, not secrecy
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id or bridge_id, protocol=mqtt.MQTTv5
        )
        if self.endpoint.username:
            self.client.username_pw_set(self.endpoint.username, self.endpoint.password)
        self.client.max_inflight_messages_set(MAX_INFLIGHT_PUBLISHES)
        self.client.max_queued_messages_set(MAX_QUEUED_PUBLISHES)
        self.client.will_set(
            status_topic(bridge_id), status_payload(bridge_id, "offline"), qos=1, retain=True
        )
        if self.endpoint.tls:
            # The broker's certificate must chain to the CA given (or the system's) and name
            # the host: paho's defaults (CERT_REQUIRED, hostname checked).
            self.client.tls_set(ca_certs=str(ca_file) if ca_file is not None else None)
        elif ca_file is not None:
            raise UplinkError("a CA file is for mqtts:// URLs; this one is not TLS")
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message
        self.client.on_publish = self._on_publish

    # -- paho callbacks (network thread) -----------------------------------------------

    def _on_connect(
        self, client: mqtt.Client, _u: object, _f: object, reason: ReasonCode, _p: object
    ) -> None:
        if reason.is_failure:
            log.warning("broker refused bridge %s: %s", self.bridge_id, reason)
            return
        self.connections += 1
        client.subscribe(acks_topic(self.bridge_id), qos=1)
        client.publish(
            status_topic(self.bridge_id),
            status_payload(self.bridge_id, "online"),
            qos=1,
            retain=True,
        )

    def _on_subscribe(
        self, _c: mqtt.Client, _u: object, _m: int, reasons: list[ReasonCode], _p: object
    ) -> None:
        if reasons and not reasons[0].is_failure:
            self.ready.set()
            if self.on_ready is not None:
                self.on_ready()

    def _on_message(self, _c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        try:
            confirmations = Confirmations.model_validate_json(msg.payload)
        except ValidationError:
            log.warning("not a confirmation: %r", msg.payload[:200])
            return  # the batch stays unconfirmed and is re-sent
        with self._changed:
            for ack in confirmations.batches:
                self.acks[ack.batch_id] = ack
                self.acks.move_to_end(ack.batch_id)
            while len(self.acks) > MAX_KEPT_ACKS:
                self.acks.popitem(last=False)
            self._changed.notify_all()
        if self.on_ack is not None:
            for ack in confirmations.batches:
                self.on_ack(ack)

    def _on_publish(
        self, _c: mqtt.Client, _u: object, mid: int, reason: ReasonCode, _p: object
    ) -> None:
        if self.on_published is not None:
            self.on_published(mid, int(reason.value))

    # -- the network loop --------------------------------------------------------------

    def _network(self) -> None:
        attempt = 0
        while not self._stopping.is_set():
            try:
                self.client.connect(self.endpoint.host, self.endpoint.port, KEEPALIVE_S)
            except OSError as exc:  # refused, unreachable, or a certificate not trusted
                log.info("broker %s:%s: %s", self.endpoint.host, self.endpoint.port, exc)
            else:
                while not self._stopping.is_set():
                    if self.client.loop(LOOP_TIMEOUT_S) != mqtt.MQTT_ERR_SUCCESS:
                        break
                    if self.ready.is_set():
                        attempt = 0
                self.ready.clear()
            if self._stopping.is_set():
                break
            delay = backoff_delay(
                attempt, base_s=RECONNECT_BASE_S, cap_s=RECONNECT_CAP_S, rng=self._rng
            )
            attempt += 1
            self._stopping.wait(delay)

    def start(self, wait: bool = True, timeout: float = CONNECT_TIMEOUT_S) -> Uplink:
        self._thread = threading.Thread(
            target=self._network, name=f"uplink-{self.bridge_id}", daemon=True
        )
        self._thread.start()
        if wait and not self.ready.wait(timeout):
            self.close()
            raise UplinkError(
                f"broker {self.endpoint.host}:{self.endpoint.port} did not accept bridge "
                f"{self.bridge_id!r}"
            )
        return self

    def __enter__(self) -> Uplink:
        return self.start()

    def __exit__(
        self, _t: type[BaseException] | None, _e: BaseException | None, _tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Say "offline" (retained), disconnect cleanly, stop the network thread."""
        if self._thread is None:
            return
        if self.ready.is_set():
            info = self.client.publish(
                status_topic(self.bridge_id),
                status_payload(self.bridge_id, "offline"),
                qos=1,
                retain=True,
            )
            deadline = time.monotonic() + CLOSE_TIMEOUT_S
            while not info.is_published() and time.monotonic() < deadline and self.ready.is_set():
                time.sleep(LOOP_TIMEOUT_S / 10)
        self.client.disconnect()
        self._stopping.set()
        self._thread.join(CONNECT_TIMEOUT_S)
        self._thread = None
        release(self.client)

    # -- publishing ----------------------------------------------------------------------

    def publish(self, batch: ReadingsBatch) -> mqtt.MQTTMessageInfo:
        return self.publish_raw(batch.to_json())

    def publish_raw(self, payload: bytes) -> mqtt.MQTTMessageInfo:
        return self.client.publish(readings_topic(self.bridge_id), payload, qos=1)

    def wait_confirmed(self, batch_ids: Iterable[uuid.UUID], timeout: float) -> list[BatchAck]:
        wanted = set(batch_ids)
        with self._changed:
            if not self._changed.wait_for(lambda: wanted <= self.acks.keys(), timeout):
                missing = len(wanted - self.acks.keys())
                raise UplinkError(
                    f"{missing} of {len(wanted)} batches not confirmed in {timeout} s"
                )
            return [self.acks[b] for b in wanted]
