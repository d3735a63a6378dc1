"""The local stack itself: TimescaleDB storage, migrations, and the broker's roles."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner

from core.broker_roles import ADMIN_USER, INGEST_USER, describe, worker_user
from core.contract import ALL_READINGS, readings_topic, shared
from core.settings import MqttEndpoint
from stack.cli import cli
from stack.local import Services
from tests.mqtt_client import Probe, connect_answer
from tests.support import Bridge, batch, readings, wait_for


def test_readings_table_is_a_timescaledb_hypertable(services: Services) -> None:
    with psycopg.connect(services.database_url) as conn:
        row = conn.execute(
            "SELECT d.column_name FROM timescaledb_information.dimensions d"
            " WHERE d.hypertable_name = 'readings'"
        ).fetchone()
    assert row == ("measured_at",)


def test_db_upgrade_applies_once_and_then_reports_up_to_date(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GLUCOBRIDGE_DATABASE_URL", services.database_url)
    result = CliRunner().invoke(cli, ["db", "upgrade"])
    assert result.exit_code == 0, result.output
    assert "schema is up to date" in result.output
    with psycopg.connect(services.database_url) as conn:
        versions = [r[0] for r in conn.execute("SELECT version FROM schema_migrations")]
    assert versions == sorted(set(versions)) and versions[0] == 1


def test_a_bridge_can_publish_only_under_its_own_id(services: Services) -> None:
    # A listener with ingest's rights (a worker user of its own), on a share group of its own.
    worker = worker_user("acl-listener", 0)
    listen_url = services.url(worker, _password(services.ingest_url("acl-listener")))
    with Probe(listen_url, worker) as listener:
        assert not listener.connect().is_failure
        assert str(listener.subscribe(shared(ALL_READINGS, "acl"))) == "Granted QoS 1"
        with Bridge.connect(services, "home-acl-a") as a:
            forged = a.client.publish(readings_topic("home-acl-b"), b"forged", qos=1)
            forged.wait_for_publish(5)
            a.publish(batch("home-acl-a", "SN-ACL", readings(1))).wait_for_publish(5)
            # The broker delivers in order: once a's own message is in, the forged one is
            # known to have been dropped rather than delayed.
            wait_for(lambda: len(listener.received) >= 1, timeout=10)
    assert [m.topic for m in listener.received] == [readings_topic("home-acl-a")]
    assert b"forged" not in listener.received[0].payload


def test_the_broker_refuses_a_wrong_password(services: Services) -> None:
    url = services.add_bridge("home-acl-c")
    right = MqttEndpoint.parse(url)
    assert not connect_answer(url, "home-acl-c").is_failure
    wrong = services.url("home-acl-c", f"not-{right.password}")
    assert str(connect_answer(wrong, "home-acl-c")) == "Not authorized"


def test_the_broker_denies_what_no_role_allows(services: Services) -> None:
    """The generated configuration: publishing, receiving and subscribing are denied unless
    a role allows them, and every client but the admin is bound to its client id."""
    assert services.mosquitto is not None, "this test reads the private broker's files"
    config = json.loads(services.mosquitto.dynsec_file.read_text())
    assert config["defaultACLAccess"] == {
        "publishClientSend": False,
        "publishClientReceive": False,
        "subscribe": False,
        "unsubscribe": True,
    }
    unbound = [c["username"] for c in config["clients"] if c.get("clientid") != c["username"]]
    assert unbound == [ADMIN_USER]
    # A worker user is refused under any client id but its own, even another worker's.
    assert str(connect_answer(services.mqtt_url, "glucobridge-ingest-0")) == "Not authorized"
    ingest_1 = services.url(worker_user(INGEST_USER, 1), _password(services.mqtt_url))
    assert str(connect_answer(ingest_1, worker_user(INGEST_USER, 0))) == "Not authorized"
    assert not connect_answer(ingest_1, worker_user(INGEST_USER, 1)).is_failure


def _password(url: str) -> str:
    password = MqttEndpoint.parse(url).password
    assert password is not None
    return password


def test_the_readme_shows_the_role_table_the_broker_is_made_from() -> None:
    """The production section documents the broker with the very table the stack uses."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert describe() in readme


def test_broker_init_writes_a_new_brokers_users_with_fresh_passwords(tmp_path: Path) -> None:
    target = tmp_path / "dynamic-security.json"
    result = CliRunner().invoke(cli, ["broker", "init", str(target), "--ingest-workers", "2"])
    assert result.exit_code == 0, result.output
    assert target.stat().st_mode & 0o777 == 0o600  # password hashes: the owner's only
    printed = dict(line.split(": ", 1) for line in result.output.splitlines()[1:])
    passwords = {key.split(" ", 1)[0]: value for key, value in printed.items()}
    clients = {c["username"]: c for c in json.loads(target.read_text())["clients"]}
    assert set(clients) == {ADMIN_USER, "ingest-0", "ingest-1", "alerts"}
    for user, client in clients.items():
        password = passwords["ingest" if user.startswith("ingest-") else user]
        digest = hashlib.pbkdf2_hmac(
            "sha512", password.encode(), base64.b64decode(client["salt"]), client["iterations"]
        )
        assert base64.b64encode(digest).decode() == client["password"], user
    again = CliRunner().invoke(cli, ["broker", "init", str(target)])
    assert again.exit_code != 0 and "exists" in again.output
