"""`glucobridge alerts`: two loops, each with its own database connection.

The evaluator wakes on NOTIFY readings_stored (or its poll), evaluates what committed since
its checkpoint, and runs the clock-driven rules every `periodic_check_s`. The deliverer
empties the outbox: webhooks and MQTT, retried with backoff. Reconnection to the database is
one loop with a pure backoff function; paho reconnects to the broker by itself.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx
import psycopg

from core.backoff import backoff_delay
from core.settings import AlertsSettings
from ingest.alerts.checks import evaluate_new_readings, run_periodic
from ingest.alerts.delivery import Deliverer, MqttAlerts
from ingest.alerts.rules import DEFAULT_METER_SYNC_DAYS, DEFAULT_TIME_BELOW_RANGE_PCT
from ingest.alerts.store import Conn

log = logging.getLogger("glucobridge.alerts")

NOTIFY_CHANNEL = "readings_stored"
# The deliverer looks for due retries at least this often when nothing new wakes it.
DELIVERY_POLL_S = 0.25


class AlertsWorker:
    def __init__(self, settings: AlertsSettings) -> None:
        self.settings = settings
        self.stopping = threading.Event()
        self.ready = threading.Event()  # checkpoint in place: readings from now on are seen
        self.new_alerts = threading.Event()  # evaluator -> deliverer: something to deliver
        self.mqtt = MqttAlerts(settings)

    def stop(self) -> None:
        self.stopping.set()
        self.new_alerts.set()

    def run(self) -> None:
        self.mqtt.start()
        deliverer = threading.Thread(target=self._deliver_loop, name="alerts-delivery")
        deliverer.start()
        try:
            self._with_connection(self._evaluate_loop)
        finally:
            self.stop()
            deliverer.join()
            self.mqtt.stop()

    def _with_connection(self, loop: Callable[[Conn], None]) -> None:
        attempt = 0
        while not self.stopping.is_set():
            try:
                with psycopg.connect(self.settings.database_url, autocommit=True) as conn:
                    attempt = 0
                    loop(conn)
            except psycopg.OperationalError as exc:
                delay = backoff_delay(attempt)
                log.warning("database unavailable (%s); retrying in %.1f s", exc, delay)
                attempt += 1
                self.stopping.wait(delay)

    def _evaluate_loop(self, conn: Conn) -> None:
        conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
        late_after = timedelta(hours=self.settings.late_after_h)
        evaluate_new_readings(conn, late_after)  # creates the checkpoint on a first start
        self.ready.set()
        next_periodic = 0.0
        while not self.stopping.is_set():
            if evaluate_new_readings(conn, late_after):
                self.new_alerts.set()
            if time.monotonic() >= next_periodic:
                run_periodic(
                    conn,
                    datetime.now(UTC),
                    DEFAULT_METER_SYNC_DAYS,
                    DEFAULT_TIME_BELOW_RANGE_PCT,
                )
                self.new_alerts.set()
                next_periodic = time.monotonic() + self.settings.periodic_check_s
            for _ in conn.notifies(timeout=self.settings.poll_s, stop_after=1):
                pass

    def _deliver_loop(self) -> None:
        with httpx.Client() as http:
            deliverer = Deliverer(self.settings, http, self.mqtt)

            def loop(conn: Conn) -> None:
                while not self.stopping.is_set():
                    if deliverer.deliver_due(conn) == 0:
                        self.new_alerts.wait(DELIVERY_POLL_S)
                        self.new_alerts.clear()

            self._with_connection(loop)
