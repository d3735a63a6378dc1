"""Delivering stored alerts: signed webhooks and the patient's MQTT alert topic, from the
outbox, with retries and backoff until the receiver takes them (or the alert is too old)."""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from core.backoff import backoff_delay
from core.broker_roles import ALERTS_USER
from core.contract import patient_alerts_topic
from core.mqtt_client import release
from core.settings import AlertsSettings, MqttEndpoint
from core.webhook_target import WebhookTargetError, resolve
from ingest.alerts.signature import SIGNATURE_HEADER, sign
from ingest.alerts.store import Conn

log = logging.getLogger("glucobridge.alerts")

# Deliveries taken per round; each round holds their rows locked (SKIP LOCKED lets a second
# worker take others), so a round is kept small.
BATCH = 20
# A broker that does not confirm a QoS 1 publish within this is treated as unavailable.
MQTT_PUBACK_TIMEOUT_S = 5.0
MQTT_KEEPALIVE_S = 30

_DUE = """
SELECT d.id, d.channel, d.payload, d.attempts, d.created_at, e.url, e.secret
FROM alert_deliveries d LEFT JOIN webhook_endpoints e ON e.id = d.endpoint_id
WHERE d.delivered_at IS NULL AND d.failed_at IS NULL AND d.next_attempt_at <= now()
ORDER BY d.next_attempt_at
LIMIT %(batch)s
FOR UPDATE OF d SKIP LOCKED
"""


class DeliveryError(Exception):
    """One attempt failed; `reason` is kept on the outbox row."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class MqttAlerts:
    """A paho client in its own network thread; `publish` waits for the broker's PUBACK and
    fails on a refusal (an ACL denial comes back as reason code 135)."""

    def __init__(self, settings: AlertsSettings) -> None:
        self.endpoint = MqttEndpoint.parse(settings.mqtt_url)
        # Its client id is its user name: the broker binds the two.
        user = self.endpoint.username or ALERTS_USER
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=user, protocol=mqtt.MQTTv5)
        self.client.username_pw_set(user, self.endpoint.password)
        self.client.on_publish = self._on_publish
        self.client.reconnect_delay_set(min_delay=1, max_delay=10)
        self._refused: dict[int, str] = {}
        self._lock = threading.Lock()

    def _on_publish(
        self, _c: mqtt.Client, _u: object, mid: int, reason: ReasonCode, _p: object
    ) -> None:
        if reason.is_failure:
            with self._lock:
                self._refused[mid] = str(reason)

    def start(self) -> None:
        self.client.connect_async(self.endpoint.host, self.endpoint.port, MQTT_KEEPALIVE_S)
        self.client.loop_start()

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
        release(self.client)

    def publish(self, payload: dict[str, Any]) -> None:
        if not self.client.is_connected():
            raise DeliveryError("not connected to the broker")
        info = self.client.publish(
            patient_alerts_topic(str(payload["patient_id"])), json.dumps(payload), qos=1
        )
        try:
            info.wait_for_publish(MQTT_PUBACK_TIMEOUT_S)
        except (RuntimeError, ValueError) as exc:
            raise DeliveryError(f"publish failed: {exc}") from exc
        if not info.is_published():
            raise DeliveryError("broker did not confirm the publish")
        with self._lock:
            refused = self._refused.pop(info.mid, None)
        if refused:
            raise DeliveryError(f"broker refused the publish: {refused}")


@dataclass
class Deliverer:
    settings: AlertsSettings
    http: httpx.Client
    mqtt_alerts: MqttAlerts

    def deliver_due(self, conn: Conn) -> int:
        """One round over what is due; returns how many were attempted."""
        with conn.transaction():
            rows = conn.execute(_DUE, {"batch": BATCH}).fetchall()
            for delivery_id, channel, payload, attempts, created, url, secret in rows:
                try:
                    if channel == "webhook":
                        self._webhook(url, secret, payload, delivery_id)
                    else:
                        self.mqtt_alerts.publish(payload)
                except DeliveryError as exc:
                    self._failed(conn, delivery_id, attempts, created, exc.reason)
                else:
                    conn.execute(
                        "UPDATE alert_deliveries SET delivered_at = now(), attempts = %s,"
                        " last_error = NULL WHERE id = %s",
                        (attempts + 1, delivery_id),
                    )
        return len(rows)

    def _webhook(self, url: str, secret: str, payload: dict[str, Any], delivery_id: int) -> None:
        # Checked again now, after resolving the name: the address may have changed since
        # the URL was registered. The request goes to the address checked, under its name.
        try:
            target = resolve(url, allow_private=self.settings.webhook_allow_private)
        except WebhookTargetError as exc:
            raise DeliveryError(f"target refused: {exc.reason}") from exc
        body = json.dumps(payload, separators=(",", ":")).encode()
        headers = {
            "Host": target.host_header,
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(secret, int(time.time()), body),
            "Glucobridge-Delivery": str(delivery_id),
        }
        try:
            response = self.http.post(
                target.connect_url,
                content=body,
                headers=headers,
                timeout=self.settings.webhook_timeout_s,
                # TLS names and verifies the host, not the address connected to.
                extensions={"sni_hostname": target.host},
                follow_redirects=False,  # a receiver may not bounce the request elsewhere
            )
        except httpx.HTTPError as exc:
            raise DeliveryError(f"{type(exc).__name__}: {exc}") from exc
        if not response.is_success:
            raise DeliveryError(f"receiver answered {response.status_code}")

    def _failed(
        self, conn: Conn, delivery_id: int, attempts: int, created: datetime, reason: str
    ) -> None:
        give_up = datetime.now(UTC) - created > timedelta(hours=self.settings.give_up_after_h)
        delay = backoff_delay(
            attempts, base_s=self.settings.retry_base_s, cap_s=self.settings.retry_cap_s
        )
        log.warning("delivery %d failed (attempt %d): %s", delivery_id, attempts + 1, reason)
        conn.execute(
            "UPDATE alert_deliveries SET attempts = %s, last_error = %s,"
            " next_attempt_at = now() + make_interval(secs => %s),"
            " failed_at = CASE WHEN %s THEN now() END WHERE id = %s",
            (attempts + 1, reason, delay, give_up, delivery_id),
        )
