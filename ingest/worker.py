"""An ingest worker: MQTT v5 shared subscription in, batched writes to TimescaleDB out.

One thread does everything, in one visible loop: it pumps paho's network I/O (whose
callbacks only append the message to the inbox), writes the inbox to the database in
batches, and acknowledges each message only after its rows are committed (paho's manual
acknowledgement): a crash means redelivery, never loss. After the commit it confirms each
batch to its bridge, which then retires the batch from its outbox. A single thread keeps
paho and the writer from fighting over the interpreter, and keeps the hand-off obvious.

Memory stays bounded: the broker sends at most RECEIVE_MAXIMUM unacknowledged messages, so
while the database is down the inbox stops growing at that many messages.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from core.backoff import backoff_delay
from core.broker_roles import INGEST_USER, worker_user
from core.contract import ALL_READINGS, acks_topic, shared
from core.mqtt_client import release
from core.settings import IngestSettings, MqttEndpoint
from ingest.batching import (
    Connection,
    Inbox,
    confirmations,
    count_commit,
    pumping,
    store_until_committed,
)
from ingest.metrics import IngestMetrics

log = logging.getLogger("glucobridge.ingest")

# How long the broker keeps a worker's session after the connection is lost, queueing that
# worker's share of the readings: long enough for a supervisor to restart a crashed worker,
# which then receives what arrived while it was away. A worker that never returns costs at
# most this much delay: its share is lost with the session, and the bridges, never having
# been confirmed, send those batches again.
SESSION_EXPIRY_S = 15 * 60
# After a graceful stop the session is kept only this long: enough for a restart (a deploy),
# short enough that a worker removed for good soon stops being handed a share.
RESTART_GRACE_S = 60
# Unacknowledged messages the broker may send one worker at once. It bounds the worker's
# memory (a sync of 200 readings is ~60 kB, a lone reading ~400 B) and stays far below
# paho's 65,535 message ids.
RECEIVE_MAXIMUM = 4000
KEEPALIVE_S = 30
# How long one pass of the loop waits for network input: bounds how late a stop is noticed.
POLL_S = 0.1
# Confirmations go out at QoS 0: one that is lost only makes the bridge send its batch again,
# which dedupe absorbs and confirms anew. QoS 1 would cost a PUBACK round trip per batch and
# keep every confirmation in paho's memory until the broker answers.
ACK_QOS = 0
# Reconnection to the broker: quick first, then at most this far apart.
RECONNECT_BASE_S = 0.2
RECONNECT_CAP_S = 10.0


@dataclass(frozen=True)
class Message:
    topic: str
    payload: bytes
    mid: int
    qos: int
    connection: int  # which connection delivered it: a mid is valid only on that one
    received: float  # time.monotonic() at arrival, for the lag metric


def _properties(packet: int, **values: int) -> Properties:
    props = Properties(packet)  # type: ignore[no-untyped-call]
    for name, value in values.items():
        setattr(props, name, value)
    return props


class Worker:
    def __init__(
        self, settings: IngestSettings, index: int = 0, metrics: IngestMetrics | None = None
    ) -> None:
        self.settings = settings
        self.metrics = metrics or IngestMetrics()
        self.inbox: Inbox[Message] = Inbox(settings, self.metrics)
        self.arrived = 0  # messages received since start (tells `_pump` the socket had more)
        self.stopping = False
        self.leave_on_stop = False
        self.connection = 0
        self.subscribed = False
        self.endpoint = MqttEndpoint.parse(settings.mqtt_url)
        # Worker i has a broker user of its own, whose name is also its client id (the broker
        # binds the two, so no other client can take over this worker's session).
        self.user = worker_user(self.endpoint.username or INGEST_USER, index)
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.user,
            protocol=mqtt.MQTTv5,
            manual_ack=True,
        )
        self.client.username_pw_set(self.user, self.endpoint.password)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message

    # -- paho callbacks: record what happened, nothing else ---------------------------------
    def _on_connect(
        self, client: mqtt.Client, _u: object, _f: object, reason: ReasonCode, _p: object
    ) -> None:
        if reason.is_failure:
            log.error("broker refused connection: %s", reason)
            return
        self.connection += 1
        client.subscribe(shared(ALL_READINGS, self.settings.share_group), qos=1)
        log.info("connected to broker (connection %d)", self.connection)

    def _on_subscribe(
        self, _c: mqtt.Client, _u: object, _mid: int, reasons: list[ReasonCode], _p: object
    ) -> None:
        if reasons and reasons[0].is_failure:
            log.error("broker refused the subscription: %s", reasons[0])
            return
        self.subscribed = True
        log.info("subscribed to %s", shared(ALL_READINGS, self.settings.share_group))

    def _on_disconnect(
        self, _c: mqtt.Client, _u: object, _f: object, reason: object, _p: object
    ) -> None:
        self.subscribed = False
        if not self.stopping:
            log.warning("disconnected from broker: %s", reason)

    def _on_message(self, _c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        payload = bytes(msg.payload)
        self.inbox.add(
            Message(msg.topic, payload, msg.mid, msg.qos, self.connection, time.monotonic())
        )
        self.arrived += 1

    # -- the loop ---------------------------------------------------------------------------
    def run(self) -> None:
        conn: Connection | None = None
        self._connect()
        try:
            while not self.stopping:
                batch = self.inbox.take()
                if batch:
                    conn = self._store_until_committed(conn, batch)
                else:
                    self._pump(self.inbox.due_in(POLL_S))
        finally:
            # A stop keeps the broker session for a restart's while (the restarted worker
            # picks up where this one left off); leaving ends it at once.
            expiry = 0 if self.leave_on_stop else RESTART_GRACE_S
            self.client.disconnect(
                properties=_properties(PacketTypes.DISCONNECT, SessionExpiryInterval=expiry)
            )
            release(self.client)
            if conn is not None:
                conn.close()

    def stop(self, *, leave: bool = False) -> None:
        """Stop after the batch in hand (safe from a signal handler or another thread).
        Received, uncommitted messages are not acknowledged, so the broker sends them again
        (to this worker's session, or to the group if it leaves)."""
        self.leave_on_stop = leave
        self.stopping = True

    @property
    def ready(self) -> bool:
        """Connected and subscribed: messages published from now on reach this worker."""
        return self.subscribed

    def _connect(self) -> None:
        props = _properties(
            PacketTypes.CONNECT,
            SessionExpiryInterval=SESSION_EXPIRY_S,
            ReceiveMaximum=RECEIVE_MAXIMUM,
        )
        self.client.connect_async(
            self.endpoint.host, self.endpoint.port, KEEPALIVE_S, clean_start=False, properties=props
        )
        self._reconnect()

    def _reconnect(self) -> None:
        """The one place the worker (re)connects to the broker, with backoff."""
        attempt = 0
        while not self.stopping:
            try:
                if self.client.reconnect() == MQTTErrorCode.MQTT_ERR_SUCCESS:
                    return
            except OSError as exc:
                log.warning("broker unreachable: %s", exc)
            delay = backoff_delay(attempt, base_s=RECONNECT_BASE_S, cap_s=RECONNECT_CAP_S)
            attempt += 1
            time.sleep(delay)

    def _pump(self, timeout: float) -> None:
        """Let paho read and write for up to `timeout`, then take what the socket already
        holds, up to a batch (paho reads one packet per call): a backlog fills a batch at
        once instead of being cut by the wait meant for a lone reading. Reconnect if the
        link is gone."""
        rc = self.client.loop(timeout)
        while rc == MQTTErrorCode.MQTT_ERR_SUCCESS and not self.inbox.full():
            before = self.arrived
            rc = self.client.loop_read()  # the socket is non-blocking: no select per packet
            if self.arrived == before:
                break  # nothing more waiting
        if rc != MQTTErrorCode.MQTT_ERR_SUCCESS and not self.stopping:
            self._reconnect()

    def _store_until_committed(
        self, conn: Connection | None, messages: list[Message]
    ) -> Connection | None:
        wait = pumping(self._pump, lambda: self.stopping, POLL_S)
        committed = store_until_committed(conn, self.settings, self.metrics, messages, wait)
        if committed is None:
            return None  # stopping: the messages stay unacknowledged
        # Confirm first (one message per bridge), then acknowledge each message to the
        # broker: a crash right after the commit then leaves a stored batch unconfirmed for
        # as short a time as can be (its re-send would be confirmed as duplicates); a crash
        # between the two costs a redelivery, which dedupe absorbs.
        for bridge_id, payload in confirmations(committed.outcomes).items():
            self.client.publish(acks_topic(bridge_id), payload, qos=ACK_QOS)
        for message in messages:
            if message.connection == self.connection:
                self.client.ack(message.mid, message.qos)
            # else: the broker redelivers it on the new connection; dedupe absorbs the copy.
        count_commit(self.metrics, messages, committed)
        return committed.conn
