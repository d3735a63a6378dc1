"""Settings, one class per process, read from GLUCOBRIDGE_* environment variables.

Each process validates its settings at start-up and refuses to run with the development
placeholders when GLUCOBRIDGE_ENVIRONMENT is not "development".
"""

from __future__ import annotations

from typing import Literal
from urllib.parse import unquote, urlsplit

from pydantic import BaseModel, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Placeholder credentials that make the examples in the README runnable on a laptop;
# a production process refuses to start with them.
DEV_PASSWORD = "dev-only-change-me"  # noqa: S105 - a marker that is refused, not a secret
DEFAULT_DATABASE_URL = f"postgresql://glucobridge:{DEV_PASSWORD}@127.0.0.1:5432/glucobridge"
DEFAULT_MQTT_URL = f"mqtt://ingest:{DEV_PASSWORD}@127.0.0.1:1883"
DEFAULT_AMQP_URL = f"amqp://ingest:{DEV_PASSWORD}@127.0.0.1:5672"
DEFAULT_ALERTS_MQTT_URL = f"mqtt://alerts:{DEV_PASSWORD}@127.0.0.1:1883"
# Signs the API's access tokens in development only; refused elsewhere like the passwords.
DEV_JWT_SECRET = f"{DEV_PASSWORD}-token-signing-secret"
# HS256 wants a key at least as long as its 256-bit output (RFC 7518, section 3.2).
MIN_JWT_SECRET_BYTES = 32


# MQTT's registered ports: 1883 in the clear, 8883 over TLS (IANA service names).
MQTT_PORT = 1883
MQTTS_PORT = 8883


# The transport: one Mosquitto (one machine, the default) or a RabbitMQ cluster, whose MQTT
# plugin speaks MQTT 3.1.1 only and whose readings ingest consumes over AMQP.
BrokerKind = Literal["mosquitto", "rabbitmq"]


class MqttEndpoint(BaseModel):
    host: str
    port: int
    username: str | None
    password: str | None
    tls: bool = False
    # Further nodes of a clustered broker, tried in order after (host, port).
    others: tuple[tuple[str, int], ...] = ()

    @property
    def nodes(self) -> list[tuple[str, int]]:
        return [(self.host, self.port), *self.others]

    @classmethod
    def parse(cls, url: str, *, tls_allowed: bool = False) -> MqttEndpoint:
        """`mqtt://user:password@host:port`; with `tls_allowed` (a process that sets up TLS),
        `mqtts://` too. A cluster's nodes are listed as libpq lists hosts:
        `mqtt://user:password@host1:port1,host2:port2`."""
        head, sep, rest = url.partition("://")
        userinfo, at, hosts = rest.partition("@") if "@" in rest else ("", "", rest)
        hostlist, slash, path = hosts.partition("/")
        first, *more = hostlist.split(",")
        url = f"{head}{sep}{userinfo}{at}{first}{slash}{path}"
        parts = urlsplit(url)
        schemes = ("mqtt", "tcp", "mqtts") if tls_allowed else ("mqtt", "tcp")
        if parts.scheme not in schemes:
            wanted = "mqtt:// or mqtts://" if tls_allowed else "mqtt://"
            raise ValueError(f"MQTT URL must start with {wanted}, got {url.split(':', 1)[0]!r}")
        tls = parts.scheme == "mqtts"
        return cls(
            host=parts.hostname or "127.0.0.1",
            port=parts.port or (MQTTS_PORT if tls else MQTT_PORT),
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            tls=tls,
            others=tuple(cls._node(h, MQTTS_PORT if tls else MQTT_PORT) for h in more),
        )

    @staticmethod
    def _node(text: str, default_port: int) -> tuple[str, int]:
        parts = urlsplit(f"//{text}")
        return (parts.hostname or "127.0.0.1", parts.port or default_port)


class _Base(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GLUCOBRIDGE_", extra="ignore")

    environment: Literal["development", "production"] = "development"

    def _refuse_placeholders(self, *values: str) -> None:
        if self.environment != "development" and any(DEV_PASSWORD in v for v in values):
            raise ValueError("placeholder credentials are refused outside development")


class IngestSettings(_Base):
    database_url: str = DEFAULT_DATABASE_URL
    # Worker i signs in as "<user>-<i>" (e.g. ingest-0) with this URL's password; that user
    # name is also its client id, which the broker binds to it. Stable, so the broker keeps
    # the worker's session (and what arrives while it is away) across restarts.
    mqtt_url: str = DEFAULT_MQTT_URL
    # GLUCOBRIDGE_BROKER: on "rabbitmq", workers consume the readings' quorum queue over AMQP
    # at `amqp_url` (every node listed: amqp://ingest:pw@host1:5672,host2:5672,host3:5672),
    # worker i as "<user>-<i>"; `mqtt_url` and `share_group` are then unused.
    broker: BrokerKind = "mosquitto"
    amqp_url: str = DEFAULT_AMQP_URL
    # Workers sharing this group split the readings between them (MQTT v5 shared subscription).
    share_group: str = "ingest"
    # Prometheus metrics of worker i on 127.0.0.1:(metrics_port + i); 0 turns them off.
    metrics_port: int = Field(default=0, ge=0, le=65535)
    # A write takes at most this many messages (a sync carries 1-200 readings)...
    batch_max_messages: int = Field(default=500, ge=1)
    # ...and at most this many payload bytes (about 3,000 readings), which bounds the
    # memory a write holds once its readings are decoded into objects.
    batch_max_bytes: int = Field(default=1_000_000, ge=1)
    # ...or when its oldest message has waited this long, so one reading is stored promptly.
    batch_max_wait_s: float = Field(default=0.005, gt=0)

    @model_validator(mode="after")
    def _check(self) -> IngestSettings:
        broker_url = self.amqp_url if self.broker == "rabbitmq" else self.mqtt_url
        self._refuse_placeholders(self.database_url, broker_url)
        MqttEndpoint.parse(self.mqtt_url)
        return self


class ApiSettings(_Base):
    database_url: str = DEFAULT_DATABASE_URL
    # Reads where a few seconds of staleness is acceptable (readings lists, trends, AGP, days)
    # go here: a standby, or several with `target_session_attrs=prefer-standby`. Unset: the
    # primary serves everything. Writes, audit rows, and every read by a user who wrote
    # within `read_your_writes_s` stay on `database_url`.
    database_read_url: str | None = None
    read_your_writes_s: float = Field(default=5.0, ge=0)
    host: str = "127.0.0.1"
    port: int = 8000
    # Signs access tokens (HS256): a random string of at least 32 bytes.
    jwt_secret: str = DEV_JWT_SECRET
    # The broker's dynamic-security admin (mqtt://user:password@host:port); registering and
    # revoking bridges and home displays needs it, everything else works without.
    mqtt_admin_url: str | None = None
    # GLUCOBRIDGE_BROKER: on "rabbitmq", bridges and displays are provisioned through the
    # RabbitMQ management HTTP API at `rabbitmq_admin_url` instead, every node listed:
    # http://user:password@host1:15672,host2:15672,host3:15672 (https:// too).
    broker: BrokerKind = "mosquitto"
    rabbitmq_admin_url: str | None = None
    # Proxies whose X-Forwarded-For / X-Forwarded-Proto are believed (uvicorn's
    # forwarded_allow_ips: addresses, networks or "*"). Unset: none, every request's address
    # is its connection's, so no client can choose the address it is logged and throttled by.
    forwarded_allow_ips: str | None = None
    # Webhooks may target private, loopback and link-local addresses (and plain http there):
    # for an on-premises receiver only. Off, a webhook must be https to a public address.
    webhook_allow_private: bool = False
    # How long the record that an erasure happened (ids and dates, no health data, no
    # personal details) is kept: long enough to answer a regulator or a repeated request.
    erasure_retention_days: int = Field(default=3 * 365, ge=1)
    # A finished archive of a patient's record can be downloaded for this long.
    archive_valid_hours: int = Field(default=24, ge=1)

    @model_validator(mode="after")
    def _check(self) -> ApiSettings:
        self._refuse_placeholders(
            self.database_url,
            self.database_read_url or "",
            self.jwt_secret,
            self.mqtt_admin_url or "",
            self.rabbitmq_admin_url or "",
        )
        if len(self.jwt_secret.encode()) < MIN_JWT_SECRET_BYTES:
            raise ValueError(f"jwt_secret must be at least {MIN_JWT_SECRET_BYTES} bytes")
        if self.mqtt_admin_url is not None:
            MqttEndpoint.parse(self.mqtt_admin_url)
        return self


class DatabaseSettings(_Base):
    """For `glucobridge db upgrade`."""

    database_url: str = DEFAULT_DATABASE_URL


class AlertsSettings(_Base):
    """For `glucobridge alerts`: the worker that raises and delivers alerts."""

    database_url: str = DEFAULT_DATABASE_URL
    # Publishes alerts to glucose/v1/patients/{id}/alerts as the broker's `alerts` user,
    # whose user name is also its client id (one alerts worker per broker).
    mqtt_url: str = DEFAULT_ALERTS_MQTT_URL
    # New readings wake the worker through LISTEN/NOTIFY; this poll is the backstop.
    poll_s: float = Field(default=1.0, gt=0)
    # How often the clock-driven rules run (no readings, meter not synced, time below range).
    periodic_check_s: float = Field(default=60.0, gt=0)
    # A reading measured this long before it reached us is history, not a page: the patient
    # has long since acted on a week-old low synced today.
    late_after_h: float = Field(default=24.0, gt=0)
    # Webhook receivers get this long to answer before the attempt counts as failed.
    webhook_timeout_s: float = Field(default=5.0, gt=0)
    # As the API's: deliver to private addresses (on-premises receivers) too.
    webhook_allow_private: bool = False
    # Retries back off exponentially (with jitter) from base to cap...
    retry_base_s: float = Field(default=2.0, gt=0)
    retry_cap_s: float = Field(default=600.0, gt=0)
    # ...and give up when the alert is this old: a three-day-old page helps no one.
    give_up_after_h: float = Field(default=72.0, gt=0)

    @model_validator(mode="after")
    def _check(self) -> AlertsSettings:
        self._refuse_placeholders(self.database_url, self.mqtt_url)
        MqttEndpoint.parse(self.mqtt_url)
        return self


class BridgeSettings(_Base):
    """For `glucobridge bridge`: the home bridge between meters and the broker."""

    # This bridge's MQTT user name and topic level (provisioned by the operator).
    bridge_id: str = "home-1"
    # mqtt:// in the clear, mqtts:// over TLS (the broker's certificate checked against
    # `mqtt_ca_file`, or the system's trusted CAs when it is not set).
    mqtt_url: str = f"mqtt://home-1:{DEV_PASSWORD}@127.0.0.1:1883"
    mqtt_ca_file: str | None = None
    # Which broker the deployment runs (GLUCOBRIDGE_BROKER): on "rabbitmq" the bridge speaks
    # MQTT 3.1.1 with a persistent session, and fails over along the URL's list of nodes.
    broker: BrokerKind = "mosquitto"
    # The home's time zone: meter wall clocks are read in it.
    timezone: str = "UTC"
    # The outbox, checkpoints and bonded meters (SQLite), and the virtual radio's bonds.
    bridge_state_dir: str = ".state/bridge"
    # "bleak": bleak's platform backend (BlueZ on a Raspberry Pi); "virtual": simulated
    # meters on bumble's in-process link (demo, tests).
    ble_backend: Literal["bleak", "virtual"] = "bleak"
    # How long one scan listens; meters advertise for a minute or so after a test.
    scan_s: float = Field(default=5.0, gt=0)
    # Pause between two rounds of scanning and syncing.
    sync_interval_s: float = Field(default=60.0, gt=0)
    # No confirmation from ingest for this long while batches are in flight: those may be
    # lost, and are re-sent (each at most once until confirmations come again).
    stall_after_s: float = Field(default=3.0, gt=0)

    @model_validator(mode="after")
    def _check(self) -> BridgeSettings:
        from pathlib import Path
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        self._refuse_placeholders(self.mqtt_url)
        endpoint = MqttEndpoint.parse(self.mqtt_url, tls_allowed=True)
        if self.mqtt_ca_file is not None:
            if not endpoint.tls:
                raise ValueError("mqtt_ca_file is for an mqtts:// broker URL")
            if not Path(self.mqtt_ca_file).is_file():
                raise ValueError(f"mqtt_ca_file {self.mqtt_ca_file!r}: no such file")
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {self.timezone!r}") from exc
        return self
