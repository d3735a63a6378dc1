"""Nothing lost, nothing doubled: each test publishes a known set of readings through a
fault and checks every one is stored exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator

import psycopg
import pytest

from core.contract import ReadingsBatch
from ingest.worker import Worker
from stack.local import Services
from tests.conftest import RunningWorker
from tests.support import (
    Bridge,
    batch,
    dead_letters,
    deliver,
    readings,
    stored_identities,
    wait_for,
)

# Enough readings that a fault lands in the middle of the flow, few enough to stay quick.
METERS = 20
READINGS_PER_METER = 150
SYNC_SIZE = 30


def _syncs(bridge_id: str, prefix: str) -> tuple[list[ReadingsBatch], list[tuple[str, int]]]:
    batches, expected = [], []
    for m in range(METERS):
        serial = f"{prefix}-{m:03d}"
        items = readings(READINGS_PER_METER)
        expected += [(serial, r.sequence_number) for r in items]
        batches += [
            batch(bridge_id, serial, items[i : i + SYNC_SIZE])
            for i in range(0, len(items), SYNC_SIZE)
        ]
    return batches, sorted(expected)


class WorkerProcess:
    """`glucobridge ingest` as its own process, so it can be killed like a real one."""

    def __init__(self, services: Services, database: str) -> None:
        self.env = dict(
            os.environ,
            GLUCOBRIDGE_DATABASE_URL=database,
            # Broker users of its own (fault-ingest-0): its session outlives the test.
            GLUCOBRIDGE_MQTT_URL=services.ingest_url("fault-ingest"),
            # Its own group: its session outlives the test by the restart grace and must
            # not take a share of later tests' readings.
            GLUCOBRIDGE_SHARE_GROUP="fault-kill",
            GLUCOBRIDGE_BATCH_MAX_MESSAGES="5",
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "stack", "ingest"], env=self.env, stderr=subprocess.DEVNULL
        )

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(15)


@pytest.fixture
def worker_process(services: Services, database: str) -> Iterator[WorkerProcess]:
    process = WorkerProcess(services, database)
    process.start()
    yield process
    process.stop()


def _count(database: str) -> int:
    with psycopg.connect(database) as conn:
        row = conn.execute("SELECT count(*) FROM readings").fetchone()
        return int(row[0]) if row else 0


def test_worker_killed_mid_batch_loses_and_doubles_nothing(
    services: Services, database: str, worker_process: WorkerProcess
) -> None:
    batches, expected = _syncs("home-fault-kill", "SN-KILL")
    with Bridge.connect(services, "home-fault-kill") as bridge:
        sender = threading.Thread(target=deliver, args=(bridge, batches), daemon=True)
        sender.start()
        wait_for(lambda: _count(database) > 200)
        worker_process.kill()  # SIGKILL: no goodbye, its broker session persists
        stored_at_kill = _count(database)
        worker_process.start()
        sender.join(120)
        assert not sender.is_alive()
    assert 0 < stored_at_kill < len(expected)
    assert stored_identities(database, "SN-KILL") == expected


def test_broker_restart_mid_flow(services: Services, database: str, ingest_worker: Worker) -> None:
    assert services.mosquitto is not None, "this test restarts the private broker"
    batches, expected = _syncs("home-fault-broker", "SN-BROKER")
    half = len(batches) // 2
    with Bridge.connect(services, "home-fault-broker") as bridge:
        deliver(bridge, batches[:half])
        services.mosquitto.stop()
        for b in batches[half:]:
            bridge.publish(b)  # queued by the bridge's client while the broker is away
        services.mosquitto.start()
        deliver(bridge, batches)
    assert ingest_worker.connection >= 2  # the worker really lost and regained the broker
    assert stored_identities(database, "SN-BROKER") == expected


def test_database_restart_mid_flow(
    services: Services, database: str, ingest_worker: Worker
) -> None:
    assert services.postgres is not None, "this test restarts the private database"
    batches, expected = _syncs("home-fault-db", "SN-DB")
    half = len(batches) // 2
    with Bridge.connect(services, "home-fault-db") as bridge:
        deliver(bridge, batches[:half])
        services.postgres.stop()
        for b in batches[half:]:
            bridge.publish(b)  # the worker must hold these, unacknowledged, until it is back
        wait_for(lambda: ingest_worker.metrics.db_retries._value.get() > 0)
        services.postgres.restart()
        deliver(bridge, batches)
    assert stored_identities(database, "SN-DB") == expected


def test_two_workers_split_the_load_and_store_each_reading_once(
    services: Services, database: str
) -> None:
    first = RunningWorker.start(services, database, index=0)
    second = RunningWorker.start(services, database, index=1)
    try:
        batches, expected = _syncs("home-fault-two", "SN-TWO")
        with Bridge.connect(services, "home-fault-two") as bridge:
            deliver(bridge, batches)
    finally:
        first.stop()
        second.stop()
    assert stored_identities(database, "SN-TWO") == expected
    shares = [w.worker.metrics.received._value.get() for w in (first, second)]
    assert all(share > 0 for share in shares), shares


def test_a_flood_of_malformed_payloads_among_good_ones(
    services: Services, database: str, ingest_worker: Worker
) -> None:
    good = [batch("home-fault-flood", f"SN-FLOOD-{i:03d}", readings(2)) for i in range(300)]
    junk = [
        b"{",
        b"[]",
        b'{"schema":"glucobridge.readings/1"}',
        b"\x00" * 64,
        b'{"schema":"glucobridge.readings/1","bridge_id":"home-fault-flood"}',
    ]
    with Bridge.connect(services, "home-fault-flood") as bridge:
        for i, b in enumerate(good):
            bridge.publish_raw(junk[i % len(junk)] + str(i).encode())
            bridge.publish(b)
        deliver(bridge, good)
    expected = sorted((b.meter.serial, r.sequence_number) for b in good for r in b.readings)
    assert stored_identities(database, "SN-FLOOD") == expected
    wait_for(lambda: len(dead_letters(database)) == len(good))
    kept = sorted(payload for _, payload, _ in dead_letters(database))
    assert kept == sorted(junk[i % len(junk)] + str(i).encode() for i in range(len(good)))
