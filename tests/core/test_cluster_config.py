"""The clustered transport's configuration, without a broker: node lists in URLs, and the
RabbitMQ permissions generated from the same trust rules as Mosquitto's roles."""

from __future__ import annotations

import re
import uuid

import pytest

from core.contract import acks_topic, patient_alerts_topic, readings_topic, status_topic
from core.rabbit_roles import (
    BRIDGE_TOPIC_READ,
    BRIDGE_TOPIC_WRITE,
    bridge_definitions,
    display_definitions,
    routing_key,
)
from core.settings import IngestSettings, MqttEndpoint
from ingest.amqp_worker import AmqpNodes
from stack.rabbitmq import INGEST_TOPIC_WRITE


def test_a_bridge_url_lists_every_node_in_order() -> None:
    endpoint = MqttEndpoint.parse("mqtt://home-1:p%40ss@mq1:1884,mq2,10.0.0.3:1885")
    assert endpoint.username == "home-1" and endpoint.password == "p@ss"
    assert endpoint.nodes == [("mq1", 1884), ("mq2", 1883), ("10.0.0.3", 1885)]
    assert MqttEndpoint.parse("mqtt://a:b@h:1").nodes == [("h", 1)]


def test_an_amqp_url_lists_every_node_in_order() -> None:
    nodes = AmqpNodes.parse("amqp://ingest:s%2Fecret@mq1:5673,mq2")
    assert (nodes.user, nodes.password) == ("ingest", "s/ecret")
    assert nodes.nodes == (("mq1", 5673), ("mq2", 5672))
    with pytest.raises(ValueError, match="amqp://"):
        AmqpNodes.parse("mqtt://ingest:x@mq1:1883")


def test_placeholders_are_refused_only_on_the_url_in_use() -> None:
    safe_mqtt = "mqtt://ingest:real-secret@127.0.0.1:1883"
    safe_amqp = "amqp://ingest:real-secret@127.0.0.1:5672"
    db = "postgresql://glucobridge:real-secret@127.0.0.1/glucobridge"
    IngestSettings(environment="production", database_url=db, mqtt_url=safe_mqtt)
    IngestSettings(
        environment="production",
        database_url=db,
        mqtt_url=safe_mqtt,
        broker="rabbitmq",
        amqp_url=safe_amqp,
    )
    with pytest.raises(ValueError, match="placeholder"):
        IngestSettings(
            environment="production", database_url=db, mqtt_url=safe_mqtt, broker="rabbitmq"
        )


def _allows(pattern: str, user: str, topic: str) -> bool:
    """As RabbitMQ checks a topic permission: `{username}` filled in, the routing key
    matched."""
    return re.search(pattern.replace("{username}", re.escape(user)), routing_key(topic)) is not None


def test_a_bridge_writes_and_reads_only_its_own_topics() -> None:
    assert _allows(BRIDGE_TOPIC_WRITE, "home-1", readings_topic("home-1"))
    assert _allows(BRIDGE_TOPIC_WRITE, "home-1", status_topic("home-1"))
    assert not _allows(BRIDGE_TOPIC_WRITE, "home-1", readings_topic("home-2"))
    assert not _allows(BRIDGE_TOPIC_WRITE, "home-1", acks_topic("home-1"))
    assert not _allows(BRIDGE_TOPIC_WRITE, "home-1", readings_topic("home-10"))
    assert _allows(BRIDGE_TOPIC_READ, "home-1", acks_topic("home-1"))
    assert not _allows(BRIDGE_TOPIC_READ, "home-1", acks_topic("home-2"))
    # A subscription to everyone's acks is checked as the filter `...bridges.*.acks`.
    assert not _allows(BRIDGE_TOPIC_READ, "home-1", acks_topic("*"))
    assert _allows(INGEST_TOPIC_WRITE, "ingest-0", acks_topic("home-2"))
    assert not _allows(INGEST_TOPIC_WRITE, "ingest-0", readings_topic("home-2"))


def test_a_bridge_may_use_only_its_own_session_queues() -> None:
    definitions = bridge_definitions("home-1", "secret")
    (permission,) = definitions["permissions"]
    assert re.search(permission["configure"], "mqtt-subscription-home-1qos1")
    assert not re.search(permission["configure"], "mqtt-subscription-home-2qos1")
    assert not re.search(permission["read"], "glucobridge.readings")
    assert not re.search(permission["write"], "amq.default")
    (user,) = definitions["users"]
    assert "secret" not in str(user)


def test_a_display_reads_only_its_own_patients_alerts() -> None:
    mine, theirs = uuid.uuid4(), uuid.uuid4()
    definitions = display_definitions("display-abc", mine, "secret")
    (topic,) = definitions["topic_permissions"]
    assert _allows(topic["read"], "display-abc", patient_alerts_topic(str(mine)))
    assert not _allows(topic["read"], "display-abc", patient_alerts_topic(str(theirs)))
    assert not _allows(topic["read"], "display-abc", patient_alerts_topic("*"))
    assert not _allows(topic["write"], "display-abc", patient_alerts_topic(str(mine)))
