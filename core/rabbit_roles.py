"""Who may do what on the RabbitMQ deployment (`GLUCOBRIDGE_BROKER=rabbitmq`): the same
trust rules as Mosquitto's role table (core.broker_roles), written as RabbitMQ users,
resource permissions and topic permissions on `amq.topic`.

Shared by the stack (stack.rabbitmq imports them as definitions) and the API, which
provisions bridges and home displays at run time through the management HTTP API
(api.broker_admin.RabbitAdmin).
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import uuid
from collections.abc import Sequence
from typing import Any, Final

from core.contract import TOPIC_ROOT, patient_alerts_topic

VHOST: Final = "/"
# The MQTT plugin publishes to, and delivers from, this exchange ('/' in a topic is '.').
EXCHANGE: Final = "amq.topic"


def routing_key(topic: str) -> str:
    """An MQTT topic as the MQTT plugin routes it on `amq.topic` ('/' becomes '.')."""
    return topic.replace("/", ".")


_ROOT_KEY = re.escape(routing_key(TOPIC_ROOT))

# The same rules as Mosquitto's bridge role (core.broker_roles.ROLES[BRIDGE]), on routing
# keys: a bridge publishes its readings and status and binds (subscribes) only to its acks.
# `{username}` is filled in by the broker at every check: one rule for every bridge.
BRIDGE_TOPIC_WRITE: Final = rf"^{_ROOT_KEY}\.bridges\.{{username}}\.(readings|status)$"
BRIDGE_TOPIC_READ: Final = rf"^{_ROOT_KEY}\.bridges\.{{username}}\.acks$"
NOTHING: Final = "^$"


def password_hash(password: str) -> str:
    """RabbitMQ's `rabbit_password_hashing_sha256`: base64(salt ++ sha256(salt ++ password))."""
    salt = secrets.token_bytes(4)
    return base64.b64encode(salt + hashlib.sha256(salt + password.encode()).digest()).decode()


def user_entry(name: str, password: str, tags: Sequence[str] = ()) -> dict[str, Any]:
    return {
        "name": name,
        "password_hash": password_hash(password),
        "hashing_algorithm": "rabbit_password_hashing_sha256",
        "tags": list(tags),
    }


def permission(user: str, configure: str, write: str, read: str) -> dict[str, Any]:
    return {"user": user, "vhost": VHOST, "configure": configure, "write": write, "read": read}


def topic_permission(user: str, write: str, read: str) -> dict[str, Any]:
    return {"user": user, "vhost": VHOST, "exchange": EXCHANGE, "write": write, "read": read}


def session_queues(client_id: str) -> str:
    """The MQTT plugin's session queues of one client id (`mqtt-subscription-<id>qos0|1`)."""
    return rf"mqtt-subscription-{re.escape(client_id)}qos[01]"


def _subscriber(user: str, password: str, topic_write: str, topic_read: str) -> dict[str, Any]:
    """A user whose client id is its name: resource permissions name its own session queues
    (MQTT subscribe declares and binds them); `amq.topic` is the only exchange it touches."""
    own = session_queues(user)
    return {
        "users": [user_entry(user, password)],
        "permissions": [
            permission(user, f"^{own}$", rf"^(amq\.topic|{own})$", rf"^(amq\.topic|{own})$")
        ],
        "topic_permissions": [topic_permission(user, topic_write, topic_read)],
    }


def bridge_definitions(bridge_id: str, password: str) -> dict[str, Any]:
    """One bridge's user and permissions: it publishes its readings and status, reads its
    acks."""
    return _subscriber(bridge_id, password, BRIDGE_TOPIC_WRITE, BRIDGE_TOPIC_READ)


def display_definitions(username: str, patient_id: uuid.UUID, password: str) -> dict[str, Any]:
    """A home display's user: it publishes nothing and reads only its patient's alerts (no
    per-patient template exists, so the patient's id is written into the rule)."""
    alerts = re.escape(routing_key(patient_alerts_topic(str(patient_id))))
    return _subscriber(username, password, NOTHING, f"^{alerts}$")
