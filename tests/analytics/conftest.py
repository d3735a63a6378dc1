"""An alerts worker on the real database and broker, in a thread of the test process."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from core.settings import AlertsSettings
from ingest.alerts.worker import AlertsWorker
from stack.local import Services

# Tests cannot wait minutes for a retry: retries start at 0.1 s and back off to 0.5 s.
TEST_RETRY_BASE_S = 0.1
TEST_RETRY_CAP_S = 0.5
# The worker wakes on NOTIFY; its backstop poll is short so a test never waits long.
TEST_POLL_S = 0.2
WORKER_START_TIMEOUT_S = 10.0


@pytest.fixture
def alerts_worker(
    services: Services, database: str, request: pytest.FixtureRequest
) -> Iterator[AlertsWorker]:
    settings = AlertsSettings(
        database_url=database,
        mqtt_url=services.mqtt_url,
        client_id=f"test-alerts-{request.node.name}"[:60],
        poll_s=TEST_POLL_S,
        retry_base_s=TEST_RETRY_BASE_S,
        retry_cap_s=TEST_RETRY_CAP_S,
    )
    worker = AlertsWorker(settings)
    thread = threading.Thread(target=worker.run, name="alerts-worker", daemon=True)
    thread.start()
    assert worker.ready.wait(WORKER_START_TIMEOUT_S), "alerts worker did not start"
    yield worker
    worker.stop()
    thread.join(10)
    assert not thread.is_alive(), "alerts worker did not stop"
