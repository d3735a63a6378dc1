"""An ingest worker on the RabbitMQ cluster (`GLUCOBRIDGE_BROKER=rabbitmq`): the readings'
quorum queue in over AMQP 0-9-1, the one writer (core.intake) out, confirmations back to
each bridge's MQTT acks subscription through `amq.topic`.

One thread, one visible loop, as the MQTT worker (ingest.worker): pika's callbacks append
each delivery to the inbox; the loop writes the inbox in batches and acknowledges the
deliveries only once their rows are committed. A worker that dies holding deliveries leaves
them unacknowledged, so the queue hands them to another worker (dedupe absorbs what was
committed and not yet acknowledged, and confirms it again). The broker sends at most
PREFETCH unacknowledged deliveries, which bounds the inbox while the database is down.

The worker's URL lists every node (`amqp://user:pw@host1:port1,host2:port2`); a lost
connection is re-made to the next node that answers, starting after the one lost.
"""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import pika
import pika.exceptions
import psycopg
from pika.adapters.blocking_connection import BlockingChannel

from core.backoff import backoff_delay
from core.broker_roles import INGEST_USER, worker_user
from core.contract import acks_topic, bridge_of
from core.rabbit_roles import EXCHANGE, routing_key
from core.settings import IngestSettings
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

# The queues stack.rabbitmq declares, bound to the exchange the MQTT plugin publishes to:
# the readings, and the bridges' status heartbeats.
READINGS_QUEUE = "glucobridge.readings"
STATUS_QUEUE = "glucobridge.status"
STATUS_PREFETCH = 500
# A heartbeat heard: the bridge is online now (the server's clock, not the bridge's).
_HEARD = "UPDATE bridges SET last_seen_at = now() WHERE id = ANY(%s)"
# Unacknowledged deliveries the broker may hand one worker: a write's worth and more, so the
# next batch is already here when one commits.
PREFETCH = 2000
HEARTBEAT_S = 30
# How long one pass of the loop waits for deliveries: bounds how late a stop is noticed.
POLL_S = 0.1
# How long a connection attempt to one node may take before the next node is tried.
CONNECT_TIMEOUT_S = 2.0
RECONNECT_BASE_S = 0.2
RECONNECT_CAP_S = 5.0
AMQP_PORT = 5672

# Connection and channel failures: the node went away, or closed the channel on us.
_LINK_ERRORS = (pika.exceptions.AMQPConnectionError, pika.exceptions.AMQPChannelError)


def topic_of(key: str) -> str:
    """The MQTT topic of a routing key (bridge ids and our topics hold no '.')."""
    return key.replace(".", "/")


@dataclass(frozen=True)
class AmqpNodes:
    user: str
    password: str
    nodes: tuple[tuple[str, int], ...]

    @classmethod
    def parse(cls, url: str) -> AmqpNodes:
        """`amqp://user:password@host1:port1,host2:port2` (the user is the workers' base)."""
        scheme, _, rest = url.partition("://")
        if scheme != "amqp":
            raise ValueError(f"AMQP URL must start with amqp://, got {scheme!r}")
        userinfo, _, hosts = rest.rpartition("@")
        user, _, password = userinfo.partition(":")
        nodes = []
        for text in hosts.split("/")[0].split(","):
            parts = urlsplit(f"//{text}")
            nodes.append((parts.hostname or "127.0.0.1", parts.port or AMQP_PORT))
        return cls(unquote(user) or INGEST_USER, unquote(password), tuple(nodes))


@dataclass(frozen=True)
class Delivery:
    topic: str
    payload: bytes
    tag: int
    received: float  # time.monotonic() at arrival, for the lag metric


class AmqpWorker:
    def __init__(
        self, settings: IngestSettings, index: int = 0, metrics: IngestMetrics | None = None
    ) -> None:
        self.settings = settings
        self.metrics = metrics or IngestMetrics()
        self.inbox: Inbox[Delivery] = Inbox(settings, self.metrics)
        self.stopping = False
        self.subscribed = False
        self.endpoint = AmqpNodes.parse(settings.amqp_url)
        self.user = worker_user(self.endpoint.user, index)
        self.first = index % len(self.endpoint.nodes)  # spread workers over the nodes
        self.connection: pika.BlockingConnection | None = None
        self.channel: BlockingChannel | None = None
        # Heartbeats heard and not yet recorded: (bridge id, delivery tag on status_channel).
        self.heard: list[tuple[str | None, int]] = []
        self.status_channel: BlockingChannel | None = None

    @property
    def ready(self) -> bool:
        """Connected and consuming the readings queue."""
        return self.subscribed

    def stop(self, *, leave: bool = False) -> None:
        """Stop after the batch in hand (safe from a signal handler or another thread).
        Deliveries not yet committed are not acknowledged: the queue hands them on."""
        del leave  # a queue consumer has no session to keep or leave
        self.stopping = True

    # -- connection ----------------------------------------------------------------------
    def _parameters(self) -> list[pika.ConnectionParameters]:
        nodes = self.endpoint.nodes
        order = nodes[self.first :] + nodes[: self.first]
        credentials = pika.PlainCredentials(self.user, self.endpoint.password)
        return [
            pika.ConnectionParameters(
                host=host,
                port=port,
                credentials=credentials,
                heartbeat=HEARTBEAT_S,
                connection_attempts=1,
                socket_timeout=CONNECT_TIMEOUT_S,
                blocked_connection_timeout=HEARTBEAT_S,
                client_properties={"connection_name": self.user},
            )
            for host, port in order
        ]

    def _connect(self) -> None:
        """The one place the worker (re)connects, trying every node, with backoff."""
        attempt = 0
        while not self.stopping:
            try:
                self.connection = pika.BlockingConnection(self._parameters())
                self.channel = self.connection.channel()
                self.channel.basic_qos(prefetch_count=PREFETCH)
                self.channel.basic_consume(READINGS_QUEUE, self._on_message, auto_ack=False)
                # Heartbeats on a channel of their own: its delivery tags, acknowledged
                # together, can never cover a reading not yet committed.
                self.status_channel = self.connection.channel()
                self.status_channel.basic_qos(prefetch_count=STATUS_PREFETCH)
                self.status_channel.basic_consume(STATUS_QUEUE, self._on_status, auto_ack=False)
                self.subscribed = True
                log.info("consuming %s as %s", READINGS_QUEUE, self.user)
                return
            except _LINK_ERRORS as exc:
                log.warning("broker unavailable: %r", exc)
                self._drop()
            delay = backoff_delay(attempt, base_s=RECONNECT_BASE_S, cap_s=RECONNECT_CAP_S)
            attempt += 1
            self.first = (self.first + 1) % len(self.endpoint.nodes)
            time.sleep(delay)

    def _drop(self) -> None:
        """Forget the connection: its unacknowledged deliveries go back to the queue."""
        self.subscribed = False
        self.inbox.clear()
        self.heard = []
        connection, self.connection, self.channel = self.connection, None, None
        self.status_channel = None
        if connection is not None and connection.is_open:
            with contextlib.suppress(*_LINK_ERRORS, OSError):
                connection.close()
        self.first = (self.first + 1) % len(self.endpoint.nodes)

    def _on_message(
        self,
        _channel: BlockingChannel,
        method: Any,
        _properties: pika.BasicProperties,
        body: bytes,
    ) -> None:
        self.inbox.add(
            Delivery(topic_of(method.routing_key), body, method.delivery_tag, time.monotonic())
        )

    def _on_status(
        self,
        _channel: BlockingChannel,
        method: Any,
        _properties: pika.BasicProperties,
        _body: bytes,
    ) -> None:
        # The routing key names the bridge (the broker let only that bridge publish there);
        # the payload, the bridge's own word, is not needed.
        self.heard.append((bridge_of(topic_of(method.routing_key)), method.delivery_tag))

    def _record_heard(self, conn: Connection | None) -> Connection | None:
        """When each bridge heard from was last heard; heartbeats acknowledged after."""
        bridges = sorted({b for b, _tag in self.heard if b is not None})
        try:
            if conn is None or conn.closed:
                conn = psycopg.connect(self.settings.database_url)
            conn.execute(_HEARD, (bridges,))
            conn.commit()
        except psycopg.OperationalError as exc:
            log.warning("database unavailable for heartbeats (%s)", exc)
            if conn is not None:
                conn.close()
            self._pump(POLL_S)  # the readings path retries with backoff; this waits a poll
            return None
        assert self.status_channel is not None
        self.status_channel.basic_ack(self.heard[-1][1], multiple=True)
        self.heard = []
        return conn

    # -- the loop --------------------------------------------------------------------------
    def run(self) -> None:
        conn: Connection | None = None
        self._connect()
        try:
            while not self.stopping:
                try:
                    batch = self.inbox.take()
                    if batch:
                        conn = self._store_until_committed(conn, batch)
                    elif self.heard:
                        conn = self._record_heard(conn)
                    else:
                        self._pump(self.inbox.due_in(POLL_S))
                except _LINK_ERRORS as exc:
                    log.warning("lost the broker: %r; reconnecting", exc)
                    self._drop()
                    self._connect()
        finally:
            self._drop()
            if conn is not None:
                conn.close()

    def _pump(self, timeout: float) -> None:
        assert self.connection is not None
        self.connection.process_data_events(time_limit=timeout)

    def _store_until_committed(
        self, conn: Connection | None, deliveries: list[Delivery]
    ) -> Connection | None:
        wait = pumping(self._pump, lambda: self.stopping, POLL_S)
        committed = store_until_committed(conn, self.settings, self.metrics, deliveries, wait)
        if committed is None:
            return None  # stopping: the deliveries stay unacknowledged
        assert self.channel is not None
        # Confirmations go to `amq.topic`, routed as the MQTT plugin routes the acks topic,
        # so each bridge's MQTT subscription receives its own. Not persistent and not
        # publisher-confirmed: one that is lost only makes the bridge send its batch again.
        for bridge_id, payload in confirmations(committed.outcomes).items():
            self.channel.basic_publish(EXCHANGE, routing_key(acks_topic(bridge_id)), payload)
        # Deliveries arrive in tag order and the inbox keeps it: one ack covers the batch.
        self.channel.basic_ack(deliveries[-1].tag, multiple=True)
        count_commit(self.metrics, deliveries, committed)
        return committed.conn
