"""The one role table (core.broker_roles) and what is generated from it."""

from __future__ import annotations

import uuid

import pytest

from core.broker_roles import (
    ADMIN_USER,
    ALERTS_USER,
    DEFAULT_ACL_ACCESS,
    ROLES,
    AclType,
    BrokerRole,
    ServicePasswords,
    initial_config,
    is_reserved_name,
)


def test_the_initial_configuration_binds_every_service_but_the_admin() -> None:
    config = initial_config(ServicePasswords("a" * 20, "i" * 20, "l" * 20), ingest_workers=3)
    assert config["defaultACLAccess"] == DEFAULT_ACL_ACCESS
    assert not any(DEFAULT_ACL_ACCESS[k] for k in ("publishClientSend", "publishClientReceive"))
    clients = {c["username"]: c for c in config["clients"]}
    assert set(clients) == {ADMIN_USER, "ingest-0", "ingest-1", "ingest-2", ALERTS_USER}
    assert "clientid" not in clients[ADMIN_USER]
    for name in set(clients) - {ADMIN_USER}:
        assert clients[name]["clientid"] == name
    # Only hashes: no password appears in the file.
    assert "i" * 20 not in str(config)
    # Per-bridge and per-patient roles are made at run time, not in the file.
    assert {r["rolename"] for r in config["roles"]} == {"admin", "ingest", "alerts"}


def test_a_bridge_role_names_only_its_own_topics() -> None:
    acls = ROLES[BrokerRole.BRIDGE].acls_json("home-7")
    assert {(a["acltype"], a["topic"]) for a in acls} == {
        (AclType.SEND, "glucose/v1/bridges/home-7/readings"),
        (AclType.SEND, "glucose/v1/bridges/home-7/status"),
        (AclType.SUBSCRIBE, "glucose/v1/bridges/home-7/acks"),
        (AclType.RECEIVE, "glucose/v1/bridges/home-7/acks"),
    }
    assert ROLES[BrokerRole.BRIDGE].name("home-7") == "bridge-home-7"
    with pytest.raises(ValueError, match="per bridge_id"):
        ROLES[BrokerRole.BRIDGE].name()


@pytest.mark.parametrize(
    ("name", "reserved"),
    [
        ("ingest", True),
        ("ingest-3", True),
        ("alerts", True),
        ("api-home", True),
        ("display-x", True),
        ("glucobridge", True),
        (str(uuid.uuid4()), True),
        (uuid.uuid4().hex, True),  # a UUID without dashes is still one
        ("home-wang", False),
        ("ingestion-lab", False),  # only the whole first word counts
    ],
)
def test_names_a_bridge_may_not_take(name: str, reserved: bool) -> None:
    assert is_reserved_name(name) is reserved
