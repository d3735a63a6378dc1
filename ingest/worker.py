"""An ingest worker: MQTT v5 shared subscription in, batched writes to TimescaleDB out.

Threads and hand-off: paho's network loop runs in its own thread and its callbacks only put
(topic, payload, mid) on a bounded queue. The worker's main thread takes messages off the
queue, writes them in batches, and acknowledges each message only after its rows are
committed (paho's manual acknowledgement): a crash means redelivery, never loss. After the
commit it confirms each batch to its bridge, which then retires the batch from its outbox.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass

import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from core.backoff import backoff_delay
from core.contract import ALL_READINGS, BatchAck, acks_topic, shared
from core.settings import IngestSettings, MqttEndpoint
from ingest import store
from ingest.decode import DecodedBatch, Rejected, decode

log = logging.getLogger("glucobridge.ingest")

# The broker keeps a persistent session this long after a worker disconnects, so a
# restarted worker receives what arrived while it was away.
SESSION_EXPIRY_S = 7 * 24 * 3600
# Unacknowledged messages the broker may send us at once. It bounds the worker's memory
# (messages are small: a sync of 200 readings is ~60 kB) and stays far below paho's 65,535.
RECEIVE_MAXIMUM = 2000
KEEPALIVE_S = 30
# How often an idle worker wakes to check whether it should stop.
IDLE_POLL_S = 0.5


@dataclass(frozen=True)
class Message:
    topic: str
    payload: bytes
    mid: int
    qos: int
    connection: int  # which connection delivered it: a mid is valid only on that one


class Worker:
    def __init__(self, settings: IngestSettings) -> None:
        self.settings = settings
        self.inbox: queue.Queue[Message] = queue.Queue()
        self.stopping = threading.Event()
        self.connection = 0
        self.connected = threading.Event()  # connected and subscribed
        endpoint = MqttEndpoint.parse(settings.mqtt_url)
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=settings.client_id,
            protocol=mqtt.MQTTv5,
            manual_ack=True,
        )
        if endpoint.username:
            self.client.username_pw_set(endpoint.username, endpoint.password)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(min_delay=1, max_delay=10)
        self.endpoint = endpoint

    # -- paho's thread: hand bytes on, nothing else ----------------------------------------
    def _on_connect(
        self, client: mqtt.Client, _u: object, _f: object, reason: object, _p: object
    ) -> None:
        if getattr(reason, "is_failure", False):
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
        self.connected.set()

    def _on_disconnect(
        self, _c: mqtt.Client, _u: object, _f: object, reason: object, _p: object
    ) -> None:
        self.connected.clear()
        if not self.stopping.is_set():
            log.warning("disconnected from broker: %s; paho reconnects", reason)

    def _on_message(self, _c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        self.inbox.put(Message(msg.topic, bytes(msg.payload), msg.mid, msg.qos, self.connection))

    # -- main thread --------------------------------------------------------------------------
    def run(self) -> None:
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = SESSION_EXPIRY_S
        props.ReceiveMaximum = RECEIVE_MAXIMUM
        self.client.connect_async(
            self.endpoint.host, self.endpoint.port, KEEPALIVE_S, clean_start=False, properties=props
        )
        self.client.loop_start()
        conn: psycopg.Connection[tuple[object, ...]] | None = None
        try:
            while not self.stopping.is_set():
                messages = self._next_batch()
                if not messages:
                    continue
                conn = self._store_until_committed(conn, messages)
        finally:
            self._leave()
            if conn is not None:
                conn.close()

    def _leave(self) -> None:
        """A graceful stop leaves the share group: the session ends with the connection, so
        the broker stops queueing messages for this worker. What it received and did not
        commit is not acknowledged; the broker or the bridges send it again."""
        props = Properties(PacketTypes.DISCONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = 0
        self.client.disconnect(properties=props)
        self.client.loop_stop()

    def stop(self) -> None:
        self.stopping.set()

    def _next_batch(self) -> list[Message]:
        try:
            first = self.inbox.get(timeout=IDLE_POLL_S)
        except queue.Empty:
            return []
        messages = [first]
        deadline = time.monotonic() + self.settings.batch_max_wait_s
        while len(messages) < self.settings.batch_max_messages:
            remaining = deadline - time.monotonic()
            try:
                messages.append(
                    self.inbox.get(timeout=remaining) if remaining > 0 else self.inbox.get_nowait()
                )
            except queue.Empty:
                break
        return messages

    def _store_until_committed(
        self, conn: psycopg.Connection[tuple[object, ...]] | None, messages: list[Message]
    ) -> psycopg.Connection[tuple[object, ...]]:
        batches: list[DecodedBatch] = []
        rejected: list[Rejected] = []
        for message in messages:
            result = decode(message.topic, message.payload)
            if isinstance(result, Rejected):
                log.warning("dead-lettered message on %s: %s", message.topic, result.reason)
                rejected.append(result)
            else:
                batches.append(result)
        attempt = 0
        while True:
            try:
                if conn is None or conn.closed:
                    conn = psycopg.connect(self.settings.database_url)
                outcomes = _write_isolating_bad_batches(conn, batches, rejected)
                break
            except psycopg.OperationalError as exc:
                # The database is down or restarting: hold the messages unacknowledged (the
                # broker stops sending past RECEIVE_MAXIMUM) and try again until it is back.
                delay = backoff_delay(attempt)
                log.warning("database unavailable (%s); retrying in %.1f s", exc, delay)
                if conn is not None:
                    conn.close()
                conn = None
                attempt += 1
                time.sleep(delay)
        for message in messages:
            if message.connection == self.connection:
                self.client.ack(message.mid, message.qos)
            # else: the broker redelivers it on the new connection; dedupe absorbs the copy.
        for outcome in outcomes:
            ack = BatchAck(
                batch_id=outcome.batch_id,
                stored=outcome.stored,
                duplicates=outcome.duplicates,
                rejected=outcome.rejected,
            )
            self.client.publish(acks_topic(outcome.bridge_id), ack.to_json(), qos=1)
        log.info(
            "committed %d messages: %d stored, %d duplicates, %d dead-lettered",
            len(messages),
            sum(o.stored for o in outcomes),
            sum(o.duplicates for o in outcomes),
            len(rejected) + sum(o.rejected for o in outcomes),
        )
        return conn


def _write_isolating_bad_batches(
    conn: psycopg.Connection[tuple[object, ...]],
    batches: list[DecodedBatch],
    rejected: list[Rejected],
) -> list[store.BatchOutcome]:
    """Write everything at once. If the database refuses the data itself (not a lost
    connection: say a text with a NUL byte), write batch by batch and dead-letter the batch
    it refuses, confirming it to the bridge as rejected so it is not re-sent forever."""
    try:
        return store.write(conn, batches, rejected)
    except psycopg.OperationalError:
        raise
    except psycopg.Error as first_error:
        if len(batches) + len(rejected) <= 1 and batches:
            batch = batches[0]
            log.error("database refused batch %s: %s", batch.batch_id, first_error)
            reason = f"database refused the batch: {first_error}".replace("\x00", "")
            store.write(conn, [], [Rejected(batch.topic, batch.bridge_id, batch.payload, reason)])
            count = len(batch.readings) + len(batch.rejected)
            return [store.BatchOutcome(batch.batch_id, batch.bridge_id, 0, 0, count)]
        if not batches:
            raise
    outcomes = store.write(conn, [], rejected) if rejected else []
    for batch in batches:
        outcomes += _write_isolating_bad_batches(conn, [batch], [])
    return outcomes
