"""Nothing lost, nothing doubled, and a calm bridge: each test delivers a known set of
readings through a fault with the bridge's real outbox and courier (tests.support
.CourierBridge), then checks every reading is stored exactly once, that the confirmations
add up to the rows stored, and where it matters how many publishes the fault cost."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import psycopg
import pytest

from core.backoff import backoff_delay
from core.contract import ReadingsBatch
from device.uplink import RECONNECT_BASE_S, RECONNECT_CAP_S
from ingest.worker import Worker
from stack.local import Services
from tests.conftest import RunningWorker
from tests.support import (
    CourierBridge,
    batch,
    dead_letters,
    readings,
    stored_identities,
    wait_for,
)

# Enough readings that a fault lands in the middle of the flow, few enough to stay quick.
METERS = 20
READINGS_PER_METER = 150
SYNC_SIZE = 30


def _syncs(
    bridge_id: str, prefix: str, meters: int = METERS, per_meter: int = READINGS_PER_METER,
    size: int = SYNC_SIZE,
) -> tuple[list[ReadingsBatch], list[tuple[str, int]]]:  # fmt: skip
    batches, expected = [], []
    for m in range(meters):
        serial = f"{prefix}-{m:03d}"
        items = readings(per_meter)
        expected += [(serial, r.sequence_number) for r in items]
        batches += [
            batch(bridge_id, serial, items[i : i + size]) for i in range(0, len(items), size)
        ]
    return batches, sorted(expected)


def _rows(database: str, prefix: str) -> int:
    with psycopg.connect(database) as conn:
        row = conn.execute(
            "SELECT count(*) FROM readings WHERE device LIKE %s", (prefix + "%",)
        ).fetchone()
        return int(row[0]) if row else 0


def _acks_add_up(bridge: CourierBridge, database: str, prefix: str) -> None:
    """Every row stored was confirmed as stored exactly once, across every confirmation the
    bridge received (a batch delivered twice is confirmed again with stored 0)."""
    assert bridge.courier.stored_confirmed == _rows(database, prefix)
    for ack in bridge.acks:
        assert ack.stored + ack.duplicates + ack.rejected > 0


def _each_batch_confirmed_in_full(
    bridge: CourierBridge, database: str, prefix: str, batches: list[ReadingsBatch]
) -> None:
    """What a kill of the worker allows: a batch committed just before the kill lost its
    confirmation, is delivered again and confirmed as duplicates. So every batch has a
    confirmation that accounts for each of its readings (stored or already there), and
    the confirmations never call more rows stored than there are."""
    covered: dict[object, int] = {}
    for ack in bridge.acks:
        counted = ack.stored + ack.duplicates + ack.rejected
        covered[ack.batch_id] = max(covered.get(ack.batch_id, 0), counted)
    assert covered == {b.batch_id: len(b.readings) for b in batches}
    assert bridge.courier.stored_confirmed <= _rows(database, prefix)


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


def test_worker_killed_mid_batch_loses_and_doubles_nothing(
    services: Services, database: str, worker_process: WorkerProcess
) -> None:
    batches, expected = _syncs("home-fault-kill", "SN-KILL")
    with CourierBridge.connect(services, "home-fault-kill", stall_after=1.0) as bridge:
        bridge.put(*batches)
        wait_for(lambda: _rows(database, "SN-KILL") > 200)
        worker_process.kill()  # SIGKILL: no goodbye, its broker session persists
        stored_at_kill = _rows(database, "SN-KILL")
        worker_process.start()
        bridge.delivered()
        _each_batch_confirmed_in_full(bridge, database, "SN-KILL", batches)
    assert 0 < stored_at_kill < len(expected)
    assert stored_identities(database, "SN-KILL") == expected


def test_broker_restart_mid_flow(services: Services, database: str, ingest_worker: Worker) -> None:
    assert services.mosquitto is not None, "this test restarts the private broker"
    batches, expected = _syncs("home-fault-broker", "SN-BROKER")
    half = len(batches) // 2
    with CourierBridge.connect(services, "home-fault-broker") as bridge:
        bridge.put(*batches[:half])
        bridge.delivered()
        services.mosquitto.stop()
        bridge.put(*batches[half:])  # the outbox holds them while the broker is away
        services.mosquitto.start()
        bridge.delivered()
        _acks_add_up(bridge, database, "SN-BROKER")
    assert ingest_worker.connection >= 2  # the worker really lost and regained the broker
    assert stored_identities(database, "SN-BROKER") == expected


# The acceptance's outage: this many batches in flight while the database is away this long.
OUTAGE_BATCHES = 1_500
OUTAGE_S = 60.0


def test_a_minute_of_database_outage_costs_at_most_two_publishes_per_batch(
    services: Services, database: str, ingest_worker: Worker
) -> None:
    """1,500 batches in flight, the database away for 60 s: the courier re-sends each batch
    at most once (the broker and ingest hold them all), and every reading arrives once.
    The re-sent copies reach ingest beside the originals, often in the same write: the
    confirmations still add up to the rows stored."""
    assert services.postgres is not None, "this test stops the private database"
    batches, expected = _syncs(
        "home-fault-outage", "SN-OUTAGE", meters=OUTAGE_BATCHES, per_meter=1, size=1
    )
    with CourierBridge.connect(services, "home-fault-outage", window=2 * OUTAGE_BATCHES) as bridge:
        services.postgres.stop()
        try:
            bridge.put(*batches)
            wait_for(lambda: ingest_worker.metrics.db_retries._value.get() > 0)
            time.sleep(OUTAGE_S)  # the outage itself: what the bridge does meanwhile counts
        finally:
            services.postgres.restart()
        bridge.delivered(timeout=180)
        published = bridge.courier.published
        _acks_add_up(bridge, database, "SN-OUTAGE")
    print(f"\n{OUTAGE_BATCHES} batches, {OUTAGE_S:.0f} s database outage: {published} publishes")
    assert published <= 2 * OUTAGE_BATCHES
    assert stored_identities(database, "SN-OUTAGE") == expected


# Longer than the whole test: if delivery recovered, the stall path did not do it.
NO_STALL_S = 3_600.0


def test_a_broker_restart_before_the_workers_resubscribe_loses_nothing_without_a_stall(
    services: Services, database: str
) -> None:
    """The broker restarts while no worker is subscribed; the bridge, back within a second,
    publishes into a broker with no subscriber and gets PUBACK 0x10 ("no matching
    subscribers": dropped). It treats that as not delivered and probes until a worker is
    back, then sends everything again: nothing is lost, though the stall timeout is an hour."""
    assert services.mosquitto is not None, "this test restarts the private broker"
    batches, expected = _syncs("home-fault-resub", "SN-RESUB", meters=5)
    workers: list[RunningWorker] = []
    with CourierBridge.connect(services, "home-fault-resub", stall_after=NO_STALL_S) as bridge:
        services.mosquitto.stop()
        services.mosquitto.start()
        bridge.put(*batches)
        wait_for(lambda: bridge.courier.refused > 0)  # 0x10: the broker dropped it
        workers.append(RunningWorker.start(services, database))
        try:
            bridge.delivered()
        finally:
            workers[0].stop()
        courier = bridge.courier
        _acks_add_up(bridge, database, "SN-RESUB")
    assert stored_identities(database, "SN-RESUB") == expected
    # Each batch at most twice (refused, then sent again once routed), plus the probes.
    assert courier.published <= 2 * len(batches) + courier.probes


def test_a_batch_sent_twice_into_one_write_is_confirmed_once_with_its_true_counts(
    services: Services, database: str, ingest_worker: Worker
) -> None:
    """A real fault puts both copies of a batch in one database write: the database is down
    while the worker holds a first batch; the bridge's batches and, after the stall, their
    re-sent copies queue behind it. When the database returns they are written together,
    and each batch is confirmed once, with its true counts (stored 3, not 6)."""
    assert services.postgres is not None, "this test stops the private database"
    first = batch("home-fault-twice", "SN-TWICE-FIRST", readings(3, first_sequence=900))
    batches, expected = _syncs("home-fault-twice", "SN-TWICE", meters=40, per_meter=3, size=3)
    with CourierBridge.connect(services, "home-fault-twice", stall_after=1.0) as bridge:
        services.postgres.stop()
        try:
            bridge.put(first)  # the worker takes it into a write that cannot commit
            wait_for(lambda: ingest_worker.metrics.db_retries._value.get() > 0)
            bridge.put(*batches)  # these wait in the worker's inbox...
            # ...and so do their copies, re-sent once confirmations stalled.
            wait_for(lambda: bridge.courier.resent >= len(batches) + 1)
        finally:
            services.postgres.restart()
        bridge.delivered()
        acks = [a for a in bridge.acks if a.batch_id != first.batch_id]
        _acks_add_up(bridge, database, "SN-TWICE")
    by_batch: dict[object, list[tuple[int, int]]] = {}
    for ack in acks:
        by_batch.setdefault(ack.batch_id, []).append((ack.stored, ack.duplicates))
    assert len(by_batch) == len(batches)
    # Written together: one confirmation each, three readings stored, none counted twice.
    assert all(found == [(3, 0)] for found in by_batch.values()), by_batch
    assert stored_identities(database, "SN-TWICE-0") == expected


def test_database_restart_mid_flow(
    services: Services, database: str, ingest_worker: Worker
) -> None:
    assert services.postgres is not None, "this test restarts the private database"
    batches, expected = _syncs("home-fault-db", "SN-DB")
    half = len(batches) // 2
    with CourierBridge.connect(services, "home-fault-db") as bridge:
        bridge.put(*batches[:half])
        bridge.delivered()
        services.postgres.stop()
        bridge.put(*batches[half:])  # the worker must hold these, unacknowledged
        wait_for(lambda: ingest_worker.metrics.db_retries._value.get() > 0)
        services.postgres.restart()
        bridge.delivered()
        _acks_add_up(bridge, database, "SN-DB")
    assert stored_identities(database, "SN-DB") == expected


def test_two_workers_split_the_load_and_store_each_reading_once(
    services: Services, database: str
) -> None:
    first = RunningWorker.start(services, database, index=0)
    second = RunningWorker.start(services, database, index=1)
    try:
        batches, expected = _syncs("home-fault-two", "SN-TWO")
        with CourierBridge.connect(services, "home-fault-two") as bridge:
            bridge.put(*batches)
            bridge.delivered()
            _acks_add_up(bridge, database, "SN-TWO")
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
    with CourierBridge.connect(services, "home-fault-flood") as bridge:
        for i, b in enumerate(good):
            bridge.publish_raw(junk[i % len(junk)] + str(i).encode())
            bridge.put(b)
        bridge.delivered()
    expected = sorted((b.meter.serial, r.sequence_number) for b in good for r in b.readings)
    assert stored_identities(database, "SN-FLOOD") == expected
    wait_for(lambda: len(dead_letters(database)) == len(good))
    kept = sorted(payload for _, payload, _ in dead_letters(database))
    assert kept == sorted(junk[i % len(junk)] + str(i).encode() for i in range(len(good)))


def test_the_bridge_reconnects_at_most_a_second_apart() -> None:
    """The uplink's reconnect delays (the pure backoff it uses) never exceed a second, so a
    returning broker has the bridge back within one (how long it takes is a figure for a
    benchmark, not an assertion)."""
    delays = [
        backoff_delay(attempt, base_s=RECONNECT_BASE_S, cap_s=RECONNECT_CAP_S)
        for attempt in range(60)
        for _ in range(20)
    ]
    assert max(delays) <= 1.0
