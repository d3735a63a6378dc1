"""The test harness: a private Mosquitto and PostgreSQL/TimescaleDB for the whole session
(or the ones GLUCOBRIDGE_DATABASE_URL / GLUCOBRIDGE_MQTT_URL name), real sockets throughout.
A service that cannot start fails the tests that need it; nothing is skipped."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import psycopg
import pytest

from core.settings import ApiSettings, IngestSettings
from ingest.worker import Worker
from stack.local import Services, local_stack
from tests.support import HTTP_TIMEOUT_S, Bridge, serve_api, wait_for

# Emptied before each test that uses the database: every table but the migrations' record.
_ALL_TABLES = """
SELECT string_agg(format('%I.%I', schemaname, tablename), ', ')
FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'schema_migrations'
"""


@pytest.fixture(scope="session")
def services() -> Iterator[Services]:
    with local_stack("test") as started:
        yield started


@pytest.fixture
def database(services: Services) -> Iterator[str]:
    with psycopg.connect(services.database_url, autocommit=True) as conn:
        row = conn.execute(_ALL_TABLES).fetchone()
        assert row is not None and row[0]
        conn.execute(f"TRUNCATE {row[0]} CASCADE".encode())
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
        settings = IngestSettings(
            database_url=database, mqtt_url=services.mqtt_url, client_id="test-ingest"
        )
        worker = Worker(settings, index)
        thread = threading.Thread(target=worker.run, name=f"ingest-{index}", daemon=True)
        thread.start()
        wait_for(lambda: worker.ready, timeout=10)
        return cls(worker, thread)

    def stop(self) -> None:
        self.worker.stop(leave=True)
        self.thread.join(10)
        assert not self.thread.is_alive(), "ingest worker did not stop"


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
