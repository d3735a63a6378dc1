"""Bridge credentials in the broker, through Mosquitto's dynamic security plugin.

The API provisions a bridge by publishing JSON commands to `$CONTROL/dynamic-security/v1` as
the broker's admin user and reading the answers on `.../response`. A bridge gets its own role
(dynamic security has no `%u` patterns, so the "only under its own id" rule is one role per
bridge) and a client whose user name is the bridge id. Revoking deletes the client, which
also disconnects it at once, and its role; the broker then refuses those credentials.

`dynsec_config` builds the plugin's initial JSON (admin and ingest users, their roles) for
whoever starts the broker; `password_entry` hashes a password the way the plugin stores it.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import secrets
import threading
import uuid
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from core.contract import TOPIC_ROOT, acks_topic, readings_topic, status_topic
from core.settings import MqttEndpoint

CONTROL_TOPIC = "$CONTROL/dynamic-security/v1"
RESPONSE_TOPIC = f"{CONTROL_TOPIC}/response"
ADMIN_ROLE = "admin"
INGEST_ROLE = "ingest"
BRIDGE_ROLE_PREFIX = "bridge-"
# Mosquitto's own dynamic security uses sha512-pbkdf2 with 101 iterations by default
# (mosquitto_ctrl does the same); more would slow every bridge's connect for little gain
# against random 128-bit passwords.
PBKDF2_ITERATIONS = 101
SALT_BYTES = 12
# The broker answers a control command within milliseconds; this covers a busy broker.
COMMAND_TIMEOUT_S = 10.0
KEEPALIVE_S = 30
# Bridge passwords: 128 bits of randomness, shown once to the person registering the bridge.
BRIDGE_PASSWORD_BYTES = 16


class BrokerAdminError(RuntimeError):
    """The broker could not be reached, refused the admin, or refused a command."""

    def __init__(self, message: str, *, command: str | None = None) -> None:
        super().__init__(message)
        self.command = command


def password_entry(password: str, *, iterations: int = PBKDF2_ITERATIONS) -> dict[str, Any]:
    """The `password`, `salt`, `iterations` fields of a dynamic-security client."""
    salt = secrets.token_bytes(SALT_BYTES)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)
    return {
        "password": base64.b64encode(digest).decode(),
        "salt": base64.b64encode(salt).decode(),
        "iterations": iterations,
    }


def _acl(acltype: str, topic: str, *, allow: bool = True, priority: int = 0) -> dict[str, Any]:
    return {"acltype": acltype, "topic": topic, "allow": allow, "priority": priority}


def ingest_acls() -> list[dict[str, Any]]:
    """What the generated password-file ACL gives `ingest`, as dynamic-security ACLs."""
    # Mosquitto checks a shared subscription against its full `$share/<group>/...` filter.
    return [
        _acl("subscribePattern", f"{TOPIC_ROOT}/bridges/+/readings"),
        _acl("subscribePattern", f"$share/+/{TOPIC_ROOT}/bridges/+/readings"),
        _acl("subscribePattern", f"{TOPIC_ROOT}/bridges/+/status"),
        _acl("subscribePattern", f"$share/+/{TOPIC_ROOT}/bridges/+/status"),
        _acl("publishClientSend", f"{TOPIC_ROOT}/bridges/+/acks"),
    ]


def bridge_acls(bridge_id: str) -> list[dict[str, Any]]:
    """One bridge's role: write its readings and status, read its own confirmations."""
    return [
        _acl("publishClientSend", readings_topic(bridge_id)),
        _acl("publishClientSend", status_topic(bridge_id)),
        _acl("subscribeLiteral", acks_topic(bridge_id)),
    ]


def bridge_role(bridge_id: str) -> str:
    return BRIDGE_ROLE_PREFIX + bridge_id


def dynsec_config(
    *, admin_user: str, admin_password: str, ingest_user: str, ingest_password: str
) -> dict[str, Any]:
    """The plugin's initial JSON: an admin that may send control commands, and ingest.

    Default ACL access: nothing may be published or subscribed unless a role allows it;
    delivering what a client subscribed to is allowed (its subscription was checked).
    """
    return {
        "defaultACLAccess": {
            "publishClientSend": False,
            "publishClientReceive": True,
            "subscribe": False,
            "unsubscribe": True,
        },
        "clients": [
            {
                "username": admin_user,
                "textName": "glucobridge API: provisions bridges",
                "roles": [{"rolename": ADMIN_ROLE}],
                **password_entry(admin_password),
            },
            {
                "username": ingest_user,
                "textName": "glucobridge ingest workers",
                "roles": [{"rolename": INGEST_ROLE}],
                **password_entry(ingest_password),
            },
        ],
        "groups": [],
        "roles": [
            {
                "rolename": ADMIN_ROLE,
                "acls": [
                    # As `mosquitto_ctrl dynsec init` writes it: without the explicit
                    # publishClientReceive the broker never delivers the responses.
                    _acl("publishClientSend", "$CONTROL/dynamic-security/#"),
                    _acl("publishClientReceive", "$CONTROL/dynamic-security/#"),
                    _acl("subscribePattern", "$CONTROL/dynamic-security/#"),
                ],
            },
            {"rolename": INGEST_ROLE, "acls": ingest_acls()},
        ],
    }


@dataclass(frozen=True)
class BridgeCredentials:
    username: str
    password: str


class BrokerAdmin:
    """Sends dynamic-security commands; one short MQTT connection per call.

    Provisioning is rare (a bridge registered or revoked), so a connection per call keeps
    no state to go stale; paho runs on its own thread and the caller waits in a worker
    thread (`asyncio.to_thread`), never on the event loop.
    """

    def __init__(self, admin_url: str) -> None:
        self.endpoint = MqttEndpoint.parse(admin_url)

    async def provision_bridge(self, bridge_id: str) -> BridgeCredentials:
        password = secrets.token_urlsafe(BRIDGE_PASSWORD_BYTES)
        role = bridge_role(bridge_id)
        await self.run(
            [
                {"command": "createRole", "rolename": role, "acls": bridge_acls(bridge_id)},
                {
                    "command": "createClient",
                    "username": bridge_id,
                    "password": password,
                    "textName": f"bridge {bridge_id}",
                    "roles": [{"rolename": role}],
                },
            ]
        )
        return BridgeCredentials(bridge_id, password)

    async def revoke_bridge(self, bridge_id: str) -> None:
        """Delete the client (the broker disconnects it) and its role; idempotent."""
        await self.run(
            [
                {"command": "deleteClient", "username": bridge_id},
                {"command": "deleteRole", "rolename": bridge_role(bridge_id)},
            ],
            tolerate=("not found",),
        )

    async def run(
        self, commands: list[dict[str, Any]], *, tolerate: tuple[str, ...] = ()
    ) -> list[dict[str, Any]]:
        return await asyncio.to_thread(self._run_sync, commands, tolerate)

    def _run_sync(
        self, commands: list[dict[str, Any]], tolerate: tuple[str, ...]
    ) -> list[dict[str, Any]]:
        tagged = [dict(c, correlationData=uuid.uuid4().hex) for c in commands]
        wanted = {c["correlationData"] for c in tagged}
        answers: dict[str, dict[str, Any]] = {}
        done = threading.Event()
        subscribed = threading.Event()
        refused: list[str] = []

        def on_connect(
            client: mqtt.Client, _u: object, _f: object, reason: ReasonCode, _p: object
        ) -> None:
            if reason.is_failure:
                refused.append(str(reason))
                done.set()
                subscribed.set()
                return
            client.subscribe(RESPONSE_TOPIC, qos=1)

        def on_subscribe(
            _c: mqtt.Client, _u: object, _m: int, reasons: list[ReasonCode], _p: object
        ) -> None:
            if reasons and reasons[0].is_failure:
                refused.append(f"subscription to {RESPONSE_TOPIC}: {reasons[0]}")
                done.set()
            subscribed.set()

        def on_message(_c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
            try:
                body = json.loads(msg.payload)
            except ValueError:
                return
            for response in body.get("responses", []):
                tag = response.get("correlationData")
                if tag in wanted:
                    answers[tag] = response
            if wanted <= answers.keys():
                done.set()

        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"glucobridge-api-admin-{uuid.uuid4().hex[:8]}",
            protocol=mqtt.MQTTv5,
        )
        if self.endpoint.username:
            client.username_pw_set(self.endpoint.username, self.endpoint.password)
        client.on_connect = on_connect
        client.on_subscribe = on_subscribe
        client.on_message = on_message
        try:
            client.connect(self.endpoint.host, self.endpoint.port, KEEPALIVE_S)
        except OSError as exc:
            raise BrokerAdminError(
                f"broker {self.endpoint.host}:{self.endpoint.port}: {exc}"
            ) from exc
        client.loop_start()
        try:
            if not subscribed.wait(COMMAND_TIMEOUT_S):
                raise BrokerAdminError("the broker did not accept the admin connection in time")
            if not refused:
                client.publish(CONTROL_TOPIC, json.dumps({"commands": tagged}), qos=1)
            if not done.wait(COMMAND_TIMEOUT_S):
                raise BrokerAdminError("the broker did not answer the control commands in time")
        finally:
            client.disconnect()
            client.loop_stop()
        if refused:
            raise BrokerAdminError(f"the broker refused the admin: {refused[0]}")
        results = [answers[c["correlationData"]] for c in tagged]
        for command, result in zip(tagged, results, strict=True):
            error = result.get("error")
            if error and not any(t in str(error).lower() for t in tolerate):
                raise BrokerAdminError(
                    f"{command['command']}: {error}", command=str(command["command"])
                )
        return results
