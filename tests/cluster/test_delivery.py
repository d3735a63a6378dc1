"""Readings through the RabbitMQ cluster as a deployment delivers them: a bridge's outbox
and courier over MQTT 3.1.1, the readings' quorum queue, an ingest worker over AMQP, the
confirmations back on the bridge's MQTT subscription."""

from __future__ import annotations

import uuid
from datetime import datetime

import pika
import psycopg

from device.uplink import Uplink
from ingest.amqp_worker import AmqpWorker
from stack.cluster import ClusterServices
from stack.rabbitmq import READINGS_QUEUE, UNROUTABLE_QUEUE
from tests.support import CourierBridge, batch, readings, stored_identities, wait_for


def test_a_bridge_on_any_node_is_stored_once_and_confirmed(
    services: ClusterServices, amqp_worker: AmqpWorker
) -> None:
    rabbit = services.rabbit
    expected = []
    for node in range(3):
        bridge_id = f"home-node-{node}"
        services.add_bridge(bridge_id)
        items = readings(40)
        serial = f"any-node-{node}"
        expected += [(serial, r.sequence_number) for r in items]
        bridge = CourierBridge(
            rabbit.bridge_url(bridge_id, first=node), bridge_id, broker="rabbitmq"
        )
        try:
            bridge.put(*(batch(bridge_id, serial, items[i : i + 10]) for i in range(0, 40, 10)))
            bridge.delivered()
            assert sum(a.stored for a in bridge.acks) == 40
        finally:
            bridge.close()
    assert stored_identities(services.database_url, "any-node-") == sorted(expected)
    assert rabbit.queue_depth(READINGS_QUEUE) == 0


def test_the_readings_queue_is_replicated_on_every_node(services: ClusterServices) -> None:
    out = services.rabbit.ctl(0, "list_queues", "name", "type", "members", "--quiet")
    line = next(row for row in out.splitlines() if row.startswith(READINGS_QUEUE + "\t"))
    assert "quorum" in line
    assert all(node.name in line for node in services.rabbit.nodes)


def test_a_publish_nothing_is_bound_for_is_kept(services: ClusterServices) -> None:
    """amq.topic's alternate exchange keeps what no binding takes (an ack for a bridge
    never connected, here), instead of the broker dropping it."""
    rabbit = services.rabbit
    key = f"glucose.v1.bridges.nobody-{uuid.uuid4().hex[:6]}.acks"
    params = pika.URLParameters(
        f"amqp://glucobridge-admin:{rabbit.admin_password}@127.0.0.1:{rabbit.amqp_ports[1]}/%2F"
    )
    connection = pika.BlockingConnection(params)
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        channel.basic_publish("amq.topic", key, b"kept", mandatory=True)
        kept = []
        while True:
            method, _props, body = channel.basic_get(UNROUTABLE_QUEUE, auto_ack=False)
            if method is None:
                break
            kept.append((method.routing_key, body))
        channel.basic_nack(multiple=True, requeue=True)  # leave them for the operator
    finally:
        connection.close()
    assert (key, b"kept") in kept


def _last_seen(database_url: str, bridge_id: str) -> datetime | None:
    with psycopg.connect(database_url) as conn:
        query = "SELECT last_seen_at FROM bridges WHERE id = %s"
        row = conn.execute(query, (bridge_id,)).fetchone()
        assert row is not None
        return row[0] if isinstance(row[0], datetime) else None


def test_a_connected_bridge_is_seen_online_without_retained_messages(
    services: ClusterServices, amqp_worker: AmqpWorker
) -> None:
    """Retained messages and wills are per node on RabbitMQ: online status is the time
    ingest last heard the bridge's heartbeat, kept in the database."""
    services.add_bridge("home-heartbeat")
    assert _last_seen(services.database_url, "home-heartbeat") is None
    uplink = Uplink(
        services.rabbit.bridge_url("home-heartbeat", first=2), "home-heartbeat", broker="rabbitmq"
    )
    uplink.heartbeat_s = 0.2
    with uplink:
        wait_for(lambda: _last_seen(services.database_url, "home-heartbeat") is not None)
        first = _last_seen(services.database_url, "home-heartbeat")
        assert first is not None
        wait_for(lambda: (_last_seen(services.database_url, "home-heartbeat") or first) > first)
