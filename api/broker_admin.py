"""Bridges and home displays in the broker, provisioned at run time: one interface
(`Provisioner`), two implementations chosen by GLUCOBRIDGE_BROKER (`provisioner`):

- `BrokerAdmin`: Mosquitto's dynamic security plugin (the default, one machine);
- `RabbitAdmin`: the RabbitMQ cluster's management HTTP API (`rabbitmq`), the same trust
  rules as users with resource and topic permissions (core.rabbit_roles).

Mosquitto:

The admin publishes JSON commands to `$CONTROL/dynamic-security/v1` and reads the answers on
`.../response`. What each client may do comes from the one role table (`core.broker_roles`):
a bridge gets its own role and a client whose user name and client id are the bridge id; a
home display gets a client `display-...` bound to its client id, in its patient's display
role. Revoking deletes the client, which also disconnects it at once; the broker then
refuses those credentials.

The stack uses the same admin to provision what its tests and demo need.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import quote, unquote, urlsplit

import httpx
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from core import rabbit_roles
from core.broker_roles import (
    CONTROL_TOPIC,
    DISPLAY_PREFIX,
    ROLES,
    BrokerRole,
    worker_user,
)
from core.mqtt_client import release
from core.settings import ApiSettings, MqttEndpoint

RESPONSE_TOPIC = f"{CONTROL_TOPIC}/response"
# The broker answers a control command within milliseconds; this covers a busy broker.
COMMAND_TIMEOUT_S = 10.0
KEEPALIVE_S = 30
# Client passwords: 128 bits of randomness, shown once to whoever registers the device.
CLIENT_PASSWORD_BYTES = 16
# A display's user name: the prefix and this many random bytes (hex), unguessable.
DISPLAY_ID_BYTES = 6

# Answers of the plugin that mean "already as wanted".
_EXISTS = ("already exists",)
_MISSING = ("not found",)


class BrokerAdminError(RuntimeError):
    """The broker could not be reached, refused the admin, or refused a command."""

    def __init__(self, message: str, *, command: str | None = None) -> None:
        super().__init__(message)
        self.command = command


@dataclass(frozen=True)
class Step:
    """One control command, and the errors that mean it was already done."""

    command: dict[str, Any]
    tolerate: tuple[str, ...] = ()


@dataclass(frozen=True)
class ClientCredentials:
    username: str  # also the client id the broker binds it to
    password: str = field(repr=False)


def new_password() -> str:
    return secrets.token_urlsafe(CLIENT_PASSWORD_BYTES)


def _create_client(username: str, password: str, role: str, text: str) -> Step:
    return Step(
        {
            "command": "createClient",
            "username": username,
            "clientid": username,
            "password": password,
            "textName": text,
            "roles": [{"rolename": role}],
        }
    )


def _delete_client(username: str) -> Step:
    return Step({"command": "deleteClient", "username": username}, _MISSING)


def bridge_steps(bridge_id: str, password: str) -> list[Step]:
    spec = ROLES[BrokerRole.BRIDGE]
    role = spec.name(bridge_id)
    return [
        Step({"command": "createRole", "rolename": role, "acls": spec.acls_json(bridge_id)}),
        _create_client(bridge_id, password, role, f"bridge {bridge_id}"),
    ]


def revoke_bridge_steps(bridge_id: str) -> list[Step]:
    role = ROLES[BrokerRole.BRIDGE].name(bridge_id)
    return [_delete_client(bridge_id), Step({"command": "deleteRole", "rolename": role}, _MISSING)]


def display_steps(username: str, patient_id: uuid.UUID, password: str) -> list[Step]:
    spec = ROLES[BrokerRole.DISPLAY]
    role = spec.name(str(patient_id))
    acls = spec.acls_json(str(patient_id))
    return [
        # The patient's display role is shared by their displays: made by the first.
        Step({"command": "createRole", "rolename": role, "acls": acls}, _EXISTS),
        _create_client(username, password, role, f"home display of {patient_id}"),
    ]


def new_display_user() -> str:
    return DISPLAY_PREFIX + secrets.token_hex(DISPLAY_ID_BYTES)


class Provisioner(Protocol):
    """What the API asks of the broker, whichever it is."""

    async def provision_bridge(self, bridge_id: str) -> ClientCredentials: ...

    async def revoke_bridge(self, bridge_id: str) -> None:
        """Refuse the bridge from now on and disconnect it; idempotent."""

    async def provision_display(self, patient_id: uuid.UUID) -> ClientCredentials: ...

    async def revoke_display(self, username: str) -> None:
        """Refuse the display from now on and disconnect it; idempotent."""

    async def forget_patient(self, patient_id: uuid.UUID) -> None:
        """Whatever the broker kept for the patient beyond their bridges and displays (an
        erasure, once those are revoked); idempotent."""


class BrokerAdmin:
    """Sends dynamic-security commands; one short MQTT connection per call.

    Provisioning is rare (a bridge or display registered or revoked), so a connection per
    call keeps no state to go stale; paho runs on its own thread and an async caller waits
    in a worker thread (`asyncio.to_thread`), never on the event loop.
    """

    def __init__(self, admin_url: str) -> None:
        self.endpoint = MqttEndpoint.parse(admin_url)

    # -- what the API does ----------------------------------------------------------------
    async def provision_bridge(self, bridge_id: str) -> ClientCredentials:
        return await asyncio.to_thread(self.provision_bridge_sync, bridge_id)

    async def revoke_bridge(self, bridge_id: str) -> None:
        """Delete the client (the broker disconnects it) and its role; idempotent."""
        await self.run(revoke_bridge_steps(bridge_id))

    async def provision_display(self, patient_id: uuid.UUID) -> ClientCredentials:
        return await asyncio.to_thread(self.provision_display_sync, patient_id)

    async def revoke_display(self, username: str) -> None:
        await self.run([_delete_client(username)])

    async def forget_patient(self, patient_id: uuid.UUID) -> None:
        """The patient's display role."""
        role = ROLES[BrokerRole.DISPLAY].name(str(patient_id))
        await self.run([Step({"command": "deleteRole", "rolename": role}, _MISSING)])

    async def run(self, steps: list[Step]) -> list[dict[str, Any]]:
        return await asyncio.to_thread(self.run_sync, steps)

    # -- the same, synchronously (the stack, tests) ---------------------------------------
    def provision_bridge_sync(self, bridge_id: str) -> ClientCredentials:
        password = new_password()
        self.run_sync(bridge_steps(bridge_id, password))
        return ClientCredentials(bridge_id, password)

    def provision_display_sync(self, patient_id: uuid.UUID) -> ClientCredentials:
        username, password = new_display_user(), new_password()
        self.run_sync(display_steps(username, patient_id, password))
        return ClientCredentials(username, password)

    def replace_bridge_sync(self, bridge_id: str) -> ClientCredentials:
        """A bridge provisioned afresh: whatever the broker held under its id is deleted
        first (a test re-registering an id), then made again with a new password."""
        password = new_password()
        self.run_sync(revoke_bridge_steps(bridge_id) + bridge_steps(bridge_id, password))
        return ClientCredentials(bridge_id, password)

    def set_service_users_sync(self, role: BrokerRole, usernames: list[str], password: str) -> None:
        """Service users in a shared role with one password, made or reset (the stack on a
        broker it did not start)."""
        spec = ROLES[role]
        steps = [
            Step(
                {"command": "createRole", "rolename": spec.name(), "acls": spec.acls_json()},
                _EXISTS,
            )
        ]
        for name in usernames:
            steps += [_delete_client(name), _create_client(name, password, spec.name(), name)]
        self.run_sync(steps)

    def ingest_workers_sync(self, base: str, workers: int, password: str) -> None:
        self.set_service_users_sync(
            BrokerRole.INGEST, [worker_user(base, i) for i in range(workers)], password
        )

    def run_sync(self, steps: list[Step]) -> list[dict[str, Any]]:
        tagged = [dict(s.command, correlationData=uuid.uuid4().hex) for s in steps]
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
            client_id=f"glucobridge-admin-{uuid.uuid4().hex[:12]}",
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
            release(client)
        if refused:
            raise BrokerAdminError(f"the broker refused the admin: {refused[0]}")
        results = [answers[c["correlationData"]] for c in tagged]
        for step, result in zip(steps, results, strict=True):
            error = result.get("error")
            if error and not any(t in str(error).lower() for t in step.tolerate):
                name = str(step.command["command"])
                raise BrokerAdminError(f"{name}: {error}", command=name)
        return results


class RabbitAdmin:
    """Provisions through the RabbitMQ management HTTP API, one short HTTP client per call
    (provisioning is rare), trying the nodes of the URL in order: any node's API changes the
    whole cluster's users.

    A bridge or display is a user whose name is also its client id, with resource
    permissions on its own MQTT session queues and topic permissions on `amq.topic`
    (core.rabbit_roles). Revoking deletes the user (the broker refuses it from then on),
    closes its connections on every node (RabbitMQ 3.10 keeps a deleted user's connections
    open) and deletes its session queues.
    """

    def __init__(self, admin_url: str) -> None:
        parts = urlsplit(admin_url.split(",", 1)[0])
        if parts.scheme not in ("http", "https"):
            raise ValueError("the RabbitMQ admin URL must start with http:// or https://")
        self.auth = (unquote(parts.username or ""), unquote(parts.password or ""))
        hosts = admin_url.partition("://")[2].rpartition("@")[2].split("/", 1)[0]
        self.bases = [f"{parts.scheme}://{host}" for host in hosts.split(",")]

    async def _call(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        *,
        missing_ok: bool = False,
    ) -> None:
        failures: list[str] = []
        for base in self.bases:
            async with httpx.AsyncClient(
                base_url=base, auth=self.auth, timeout=COMMAND_TIMEOUT_S
            ) as client:
                try:
                    answer = await client.request(method, path, json=body)
                except httpx.TransportError as exc:
                    failures.append(f"{base}: {exc!r}")
                    continue
            if answer.is_success or (missing_ok and answer.status_code == 404):
                return
            raise BrokerAdminError(
                f"{method} {path}: {answer.status_code} {answer.text[:200]}", command=method
            )
        raise BrokerAdminError(f"no RabbitMQ node answered: {'; '.join(failures)}")

    async def _create(self, definitions: dict[str, Any]) -> None:
        vhost = quote(rabbit_roles.VHOST, safe="")
        for user in definitions["users"]:
            name = quote(user["name"], safe="")
            await self._call(
                "PUT",
                f"/api/users/{name}",
                {
                    "password_hash": user["password_hash"],
                    "hashing_algorithm": user["hashing_algorithm"],
                    "tags": ",".join(user["tags"]),
                },
            )
        for grant in definitions["permissions"]:
            name = quote(grant["user"], safe="")
            rights = {k: grant[k] for k in ("configure", "write", "read")}
            await self._call("PUT", f"/api/permissions/{vhost}/{name}", rights)
        for grant in definitions["topic_permissions"]:
            name = quote(grant["user"], safe="")
            rights = {k: grant[k] for k in ("exchange", "write", "read")}
            await self._call("PUT", f"/api/topic-permissions/{vhost}/{name}", rights)

    async def _revoke(self, username: str) -> None:
        name, vhost = quote(username, safe=""), quote(rabbit_roles.VHOST, safe="")
        # The user first: a bridge reconnecting after its connection is closed is refused.
        await self._call("DELETE", f"/api/users/{name}", missing_ok=True)
        await self._call("DELETE", f"/api/connections/username/{name}", missing_ok=True)
        for qos in (0, 1):
            queue = quote(f"mqtt-subscription-{username}qos{qos}", safe="")
            await self._call("DELETE", f"/api/queues/{vhost}/{queue}", missing_ok=True)

    async def provision_bridge(self, bridge_id: str) -> ClientCredentials:
        password = new_password()
        await self._create(rabbit_roles.bridge_definitions(bridge_id, password))
        return ClientCredentials(bridge_id, password)

    async def revoke_bridge(self, bridge_id: str) -> None:
        await self._revoke(bridge_id)

    async def provision_display(self, patient_id: uuid.UUID) -> ClientCredentials:
        username, password = new_display_user(), new_password()
        await self._create(rabbit_roles.display_definitions(username, patient_id, password))
        return ClientCredentials(username, password)

    async def revoke_display(self, username: str) -> None:
        await self._revoke(username)

    async def forget_patient(self, patient_id: uuid.UUID) -> None:
        """Nothing: a display's rule lives in its own user, deleted with it."""


def provisioner(settings: ApiSettings) -> Provisioner | None:
    """The broker's admin this API is configured with, or None when it has none."""
    if settings.broker == "rabbitmq":
        url = settings.rabbitmq_admin_url
        return RabbitAdmin(url) if url is not None else None
    return BrokerAdmin(settings.mqtt_admin_url) if settings.mqtt_admin_url is not None else None
