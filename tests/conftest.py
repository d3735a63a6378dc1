"""The test harness: a private Mosquitto and PostgreSQL/TimescaleDB for the whole session
(or the ones GLUCOBRIDGE_DATABASE_URL / GLUCOBRIDGE_MQTT_URL name), real sockets throughout.
A service that cannot start fails the tests that need it; nothing is skipped."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import psycopg
import pytest

from core.settings import AlertsSettings, ApiSettings, IngestSettings
from ingest.alerts.worker import AlertsWorker
from ingest.worker import Worker
from stack.local import Services, local_stack
from tests.support import HTTP_TIMEOUT_S, Bridge, serve_api, wait_for

# Emptied before each test that uses the database: every table but the migrations' record.
_ALL_TABLES = """
SELECT string_agg(format('%I.%I', schemaname, tablename), ', ')
FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'schema_migrations'
"""


# Alerts tests cannot wait minutes for a retry: retries start at 0.1 s and back off to 0.5 s.
TEST_RETRY_BASE_S = 0.1
TEST_RETRY_CAP_S = 0.5
# The alerts worker wakes on NOTIFY; its backstop poll is short so a test never waits long.
TEST_POLL_S = 0.2
WORKER_START_TIMEOUT_S = 10.0


@pytest.fixture(scope="session")
def services() -> Iterator[Services]:
    with local_stack("test") as started:
        yield started


def empty_database(database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        row = conn.execute(_ALL_TABLES).fetchone()
        assert row is not None and row[0]
        conn.execute(f"TRUNCATE {row[0]} CASCADE".encode())


@pytest.fixture
def database(services: Services) -> Iterator[str]:
    empty_database(services.database_url)
    yield services.database_url


@pytest.fixture
def ingest_worker(services: Services, database: str) -> Iterator[Worker]:
    """A real ingest worker on the shared subscription, in a thread of this process. It
    leaves the share group when the test ends, so nothing is queued for it afterwards."""
    running = RunningWorker.start(services, database)
    yield running.worker
    running.stop()


@dataclass
class RunningWorker:
    worker: Worker
    thread: threading.Thread

    @classmethod
    def start(cls, services: Services, database: str, index: int = 0) -> RunningWorker:
        settings = IngestSettings(database_url=database, mqtt_url=services.mqtt_url)
        worker = Worker(settings, index)
        thread = threading.Thread(target=worker.run, name=f"ingest-{index}", daemon=True)
        thread.start()
        wait_for(lambda: worker.ready, timeout=10)
        return cls(worker, thread)

    def stop(self) -> None:
        self.worker.stop(leave=True)
        self.thread.join(10)
        assert not self.thread.is_alive(), "ingest worker did not stop"


@contextlib.contextmanager
def running_alerts_worker(
    services: Services, database: str, *, webhook_allow_private: bool
) -> Iterator[AlertsWorker]:
    """The alerts worker on the real database and broker (as the broker's `alerts` user),
    in a thread of the test process."""
    settings = AlertsSettings(
        database_url=database,
        mqtt_url=services.alerts_mqtt_url,
        poll_s=TEST_POLL_S,
        retry_base_s=TEST_RETRY_BASE_S,
        retry_cap_s=TEST_RETRY_CAP_S,
        webhook_allow_private=webhook_allow_private,
    )
    worker = AlertsWorker(settings)
    thread = threading.Thread(target=worker.run, name="alerts-worker", daemon=True)
    thread.start()
    assert worker.ready.wait(WORKER_START_TIMEOUT_S), "alerts worker did not start"
    try:
        yield worker
    finally:
        worker.stop()
        thread.join(10)
        assert not thread.is_alive(), "alerts worker did not stop"


@pytest.fixture
def alerts_worker(services: Services, database: str) -> Iterator[AlertsWorker]:
    """The alerts worker, allowed to deliver to the tests' webhook receivers on 127.0.0.1
    (the operator's on-premises setting: a receiver of a test cannot be on the internet)."""
    with running_alerts_worker(services, database, webhook_allow_private=True) as worker:
        yield worker


@pytest.fixture
def api(database: str) -> Iterator[httpx.Client]:
    """The API served by uvicorn on a free port; requests go over a real socket."""
    with (
        serve_api(ApiSettings(database_url=database)) as base_url,
        httpx.Client(base_url=base_url, timeout=HTTP_TIMEOUT_S) as client,
    ):
        yield client


@pytest.fixture
def bridge(services: Services) -> Iterator[Bridge]:
    with Bridge.connect(services, "home-test-1") as connected:
        yield connected
