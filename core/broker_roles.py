"""Who may do what on the broker: ONE table of roles and their ACLs.

Everything that configures the broker is generated from `ROLES`: the private broker of
`make test` and `make demo` (stack.mosquitto), the API's provisioning of bridges and home
displays (api.broker_admin), `glucobridge broker init` for production, and the table in the
README (`glucobridge broker roles`). The broker is Mosquitto with its dynamic security plugin.

Rules the table encodes:

- Nothing is allowed unless a role allows it: the defaults deny publishing, receiving and
  subscribing (`DEFAULT_ACL_ACCESS`); every role names what its clients send, what they may
  subscribe to and what they may receive.
- Every client is bound to its identity: a client's id is its user name (dynamic security's
  per-client `clientid`), so a bridge cannot connect with an ingest worker's or another
  bridge's client id, take over its persistent session or disconnect it. Each ingest worker
  has a user of its own (`ingest-0`, `ingest-1`, ...: one client id each), the alerts worker
  has its own. Only the admin (the API's provisioning connection) is unbound: it may create
  any client, so binding it would add nothing, and the API opens one connection per command.
- Dynamic security in Mosquitto 2.0 has no `%u` patterns, so "a bridge writes only under its
  own id" is one role per bridge (`bridge-<id>`) and "a display reads only its patient's
  alerts" is one role per patient (`display-<patient id>`).
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import uuid
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

from core.contract import (
    ALL_READINGS,
    acks_topic,
    patient_alerts_topic,
    readings_topic,
    shared,
    status_topic,
)

# The plugin's control topic: the admin sends commands there and reads the answers.
CONTROL_TOPIC: Final = "$CONTROL/dynamic-security/v1"
CONTROL_FILTER: Final = "$CONTROL/dynamic-security/#"

# Service users. An ingest worker's user is `<base>-<index>` (see `worker_user`).
ADMIN_USER: Final = "api"
INGEST_USER: Final = "ingest"
ALERTS_USER: Final = "alerts"
# A home display's user name: this prefix and a random part, made by the API.
DISPLAY_PREFIX: Final = "display-"

# Mosquitto's own dynamic security uses sha512-pbkdf2 with 101 iterations by default
# (mosquitto_ctrl does the same); more would slow every bridge's connect for little gain
# against random 128-bit passwords.
PBKDF2_ITERATIONS = 101
SALT_BYTES = 12


class AclType(StrEnum):
    SEND = "publishClientSend"  # the client may publish on the topic
    RECEIVE = "publishClientReceive"  # the broker may deliver the topic's messages to it
    SUBSCRIBE = "subscribeLiteral"  # exactly this filter
    SUBSCRIBE_PATTERN = "subscribePattern"  # filters matching this one (wildcards)


@dataclass(frozen=True)
class Acl:
    type: AclType
    topic: str  # may hold {bridge_id} or {patient_id}, filled in per bridge or patient

    def as_json(self, **names: str) -> dict[str, Any]:
        return {
            "acltype": self.type.value,
            "topic": self.topic.format(**names),
            "allow": True,
            "priority": 0,
        }


class BrokerRole(StrEnum):
    ADMIN = "admin"
    INGEST = "ingest"
    ALERTS = "alerts"
    BRIDGE = "bridge"
    DISPLAY = "display"


@dataclass(frozen=True)
class RoleSpec:
    role: BrokerRole
    holders: str  # who holds the role, for the README
    acls: tuple[Acl, ...]
    # None: one role shared by its holders; "bridge_id" / "patient_id": one role per bridge
    # or patient, named `<role>-<that id>`, its topics filled in with the id.
    per: str | None = None

    def name(self, instance: str | None = None) -> str:
        if self.per is None:
            return self.role.value
        if instance is None:
            raise ValueError(f"the {self.role} role is per {self.per}: name one")
        return f"{self.role.value}-{instance}"

    def acls_json(self, instance: str | None = None) -> list[dict[str, Any]]:
        names = {self.per: instance} if self.per is not None and instance is not None else {}
        return [acl.as_json(**names) for acl in self.acls]


_BRIDGE = "{bridge_id}"
_PATIENT = "{patient_id}"

ROLES: Final[dict[BrokerRole, RoleSpec]] = {
    spec.role: spec
    for spec in (
        RoleSpec(
            BrokerRole.ADMIN,
            "the API, user `api`, provisions bridges and displays at run time",
            (
                # As `mosquitto_ctrl dynsec init` writes it: without the explicit receive
                # right the broker never delivers the plugin's responses.
                Acl(AclType.SEND, CONTROL_FILTER),
                Acl(AclType.RECEIVE, CONTROL_FILTER),
                Acl(AclType.SUBSCRIBE_PATTERN, CONTROL_FILTER),
            ),
        ),
        RoleSpec(
            BrokerRole.INGEST,
            "ingest workers, users `ingest-0`, `ingest-1`, ...",
            (
                # Only through the shared subscription (Mosquitto checks its full
                # `$share/<group>/...` filter), so workers split the readings.
                Acl(AclType.SUBSCRIBE_PATTERN, shared(ALL_READINGS, "+")),
                Acl(AclType.RECEIVE, ALL_READINGS),
                Acl(AclType.SEND, acks_topic("+")),
            ),
        ),
        RoleSpec(
            BrokerRole.ALERTS,
            "the alerts worker, user `alerts`",
            (Acl(AclType.SEND, patient_alerts_topic("+")),),
        ),
        RoleSpec(
            BrokerRole.BRIDGE,
            "one bridge, user = its bridge id, one role per bridge",
            (
                Acl(AclType.SEND, readings_topic(_BRIDGE)),
                Acl(AclType.SEND, status_topic(_BRIDGE)),
                Acl(AclType.SUBSCRIBE, acks_topic(_BRIDGE)),
                Acl(AclType.RECEIVE, acks_topic(_BRIDGE)),
            ),
            per="bridge_id",
        ),
        RoleSpec(
            BrokerRole.DISPLAY,
            "a patient's home displays, users `display-...`, one role per patient",
            (
                Acl(AclType.SUBSCRIBE, patient_alerts_topic(_PATIENT)),
                Acl(AclType.RECEIVE, patient_alerts_topic(_PATIENT)),
            ),
            per="patient_id",
        ),
    )
}

# Nothing is allowed unless a role allows it. Unsubscribing is harmless, so it stays open.
DEFAULT_ACL_ACCESS: Final = {
    "publishClientSend": False,
    "publishClientReceive": False,
    "subscribe": False,
    "unsubscribe": True,
}

# Words a bridge's id may not start with: the service users' names and the displays'.
RESERVED_WORDS: Final = frozenset({"api", "admin", "ingest", "alerts", "display", "glucobridge"})
_FIRST_WORD = re.compile(r"^[a-z0-9]+")


def is_reserved_name(name: str) -> bool:
    """True for a name a bridge may not take: a service's or display's user name (or one
    starting like it), or anything shaped like a UUID (patients' and users' ids)."""
    first = _FIRST_WORD.match(name)
    if first is not None and first.group(0) in RESERVED_WORDS:
        return True
    try:
        uuid.UUID(name)
    except ValueError:
        return False
    return True


def worker_user(base: str, index: int) -> str:
    """Ingest worker `index`'s user name, which is also its client id."""
    return f"{base}-{index}"


def password_entry(password: str, *, iterations: int = PBKDF2_ITERATIONS) -> dict[str, Any]:
    """The `password`, `salt`, `iterations` fields of a dynamic-security client."""
    salt = secrets.token_bytes(SALT_BYTES)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)
    return {
        "password": base64.b64encode(digest).decode(),
        "salt": base64.b64encode(salt).decode(),
        "iterations": iterations,
    }


def client_entry(username: str, password: str, role: str, text: str) -> dict[str, Any]:
    """One client of the initial configuration, bound to its client id (= its user name)."""
    return {
        "username": username,
        "clientid": username,
        "textName": text,
        "roles": [{"rolename": role}],
        **password_entry(password),
    }


@dataclass(frozen=True)
class ServicePasswords:
    admin: str
    ingest: str  # shared by the ingest workers' users
    alerts: str

    @classmethod
    def generate(cls) -> ServicePasswords:
        return cls(*(secrets.token_urlsafe(24) for _ in range(3)))


def initial_config(
    passwords: ServicePasswords, *, ingest_workers: int, ingest_base: str = INGEST_USER
) -> dict[str, Any]:
    """The plugin's initial JSON: the shared roles and the service users. Bridges and home
    displays are added at run time by the admin (the API)."""
    admin_client = {
        # Unbound (see the module's docstring): the API connects once per command.
        "username": ADMIN_USER,
        "textName": "glucobridge API: provisions bridges and displays",
        "roles": [{"rolename": ROLES[BrokerRole.ADMIN].name()}],
        **password_entry(passwords.admin),
    }
    ingest = ROLES[BrokerRole.INGEST]
    workers = [
        client_entry(
            worker_user(ingest_base, i), passwords.ingest, ingest.name(), f"ingest worker {i}"
        )
        for i in range(ingest_workers)
    ]
    alerts = client_entry(
        ALERTS_USER, passwords.alerts, ROLES[BrokerRole.ALERTS].name(), "alerts worker"
    )
    return {
        "defaultACLAccess": dict(DEFAULT_ACL_ACCESS),
        "clients": [admin_client, *workers, alerts],
        "groups": [],
        "roles": [
            {"rolename": spec.name(), "acls": spec.acls_json()}
            for spec in ROLES.values()
            if spec.per is None
        ],
    }


def describe() -> str:
    """The table as the README shows it (`glucobridge broker roles`)."""
    defaults = ", ".join(f"{k} {'allow' if v else 'deny'}" for k, v in DEFAULT_ACL_ACCESS.items())
    lines = [
        f"defaults: {defaults}",
        "every client but the admin is bound to a client id equal to its user name",
    ]
    for spec in ROLES.values():
        name = spec.name(f"<{spec.per}>") if spec.per else spec.name()
        lines += ["", f"role {name}: {spec.holders}"]
        lines += [f"  {acl.type.value:<22} {acl.topic}" for acl in spec.acls]
    return "\n".join(lines)
