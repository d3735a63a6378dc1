"""Acceptance 3: link drops, broker outages, lost batches, a killed bridge, cleared memory."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

from core.contract import ReadingsBatch
from device.store import BridgeStore
from firmware_sim.profiles import ACCU_CHEK, CONTOUR, NO_CONTEXT
from ingest.worker import Worker
from stack.local import Services
from tests.bridge.harness import HOME, TEST_STALL_AFTER_S, model_readings, rig, stored
from tests.conftest import RunningWorker
from tests.support import wait_for

RECORDS = 300


def _outbox_sequences(store: BridgeStore) -> list[int]:
    return [
        reading.sequence_number
        for entry in store.pending(10_000)
        for reading in ReadingsBatch.model_validate_json(entry.payload).readings
    ]


def test_link_dropped_mid_transfer_resumes_without_loss_or_duplicate(
    services: Services, ingest_worker: Worker, database: str, tmp_path: Path
) -> None:
    url = services.add_bridge("home-drop")

    async def scenario() -> None:
        # No uplink first: the outbox shows exactly what the bridge took from the meter.
        async with rig(tmp_path, None, "home-drop") as r:
            meter = await r.add_paired_meter(NO_CONTEXT, "GM-DROP", model_readings(RECORDS))
            meter.racp_server.drop_link_after = 120
            [report] = await r.bridge.sync_all()
            assert report.complete and report.attempts == 2 and report.records == RECORDS
            sequences = _outbox_sequences(r.store)
            assert sorted(sequences) == list(range(RECORDS)), "each record exactly once"
        async with rig(tmp_path, url, "home-drop") as r:
            await r.delivered()

    asyncio.run(scenario())
    assert sorted(r[0] for r in stored(database, "GM-DROP")) == list(range(RECORDS))


def test_strip_insertion_drops_the_link_and_the_next_round_picks_up_the_new_result(
    services: Services, tmp_path: Path
) -> None:
    async def scenario() -> None:
        async with rig(tmp_path, None, "home-strip") as r:
            meter = await r.add_paired_meter(ACCU_CHEK, "ACG-STRIP", model_readings(10))
            [first] = await r.bridge.sync_all()
            assert first.records == 10
            await meter.insert_strip()
            meter.measure(mg_dl=145)
            [second] = await r.bridge.sync_all()
            assert second.complete and second.records == 1
            assert sorted(_outbox_sequences(r.store)) == list(range(11))

    asyncio.run(scenario())


def test_broker_down_during_sync_outbox_delivers_when_it_returns(
    services: Services, ingest_worker: Worker, database: str, tmp_path: Path
) -> None:
    assert services.mosquitto is not None
    mosquitto = services.mosquitto
    url = services.add_bridge("home-outage")

    async def scenario() -> None:
        async with rig(tmp_path, url, "home-outage") as r:
            await r.add_paired_meter(CONTOUR, "CNO-OUTAGE", model_readings(RECORDS))
            # Called on this (main) thread: the broker is spawned with PR_SET_PDEATHSIG,
            # which fires when the *thread* that started it ends.
            mosquitto.stop()
            try:
                [report] = await r.bridge.sync_all()
                assert report.complete and r.store.unconfirmed() > 0
            finally:
                mosquitto.start()
            await asyncio.to_thread(wait_for, lambda: ingest_worker.ready, 30)
            await r.delivered()

    asyncio.run(scenario())
    assert sorted(r[0] for r in stored(database, "CNO-OUTAGE")) == list(range(RECORDS))


def test_a_batch_never_confirmed_is_sent_again_and_stored_once(
    services: Services, database: str, tmp_path: Path
) -> None:
    url = services.add_bridge("home-lost")
    workers: list[RunningWorker] = []

    async def scenario() -> None:
        async with rig(tmp_path, url, "home-lost", stall_after=TEST_STALL_AFTER_S) as r:
            await r.add_paired_meter(CONTOUR, "CNO-LOST", model_readings(RECORDS))
            # No ingest subscribed yet: the broker accepts the publish and drops it.
            await r.bridge.sync_all()
            assert r.courier is not None
            await asyncio.sleep(0.2)  # the courier publishes into the void
            assert r.courier.published > 0
            workers.append(await asyncio.to_thread(RunningWorker.start, services, database))
            await r.delivered()
            assert r.courier.resent >= 1

    try:
        asyncio.run(scenario())
    finally:
        for running in workers:
            running.stop()
    assert sorted(r[0] for r in stored(database, "CNO-LOST")) == list(range(RECORDS))


_KILLED_BRIDGE = """
import asyncio, os, signal, sys
from pathlib import Path
from firmware_sim.profiles import CONTOUR
from tests.bridge.harness import model_readings, rig

async def main():
    def die():
        os.kill(os.getpid(), signal.SIGKILL)  # between the outbox commit and any publish
    async with rig(Path(sys.argv[1]), None, "home-killed", after_commit=die) as r:
        await r.add_paired_meter(CONTOUR, "CNO-KILLED", model_readings(int(sys.argv[2])))
        await r.bridge.sync_all()

asyncio.run(main())
"""


def test_bridge_killed_after_sync_before_publishing_delivers_after_restart(
    services: Services, ingest_worker: Worker, database: str, tmp_path: Path
) -> None:
    url = services.add_bridge("home-killed")
    proc = subprocess.run(
        [sys.executable, "-c", _KILLED_BRIDGE, str(tmp_path), str(RECORDS)],
        cwd=Path(__file__).resolve().parents[2],
        env=dict(os.environ),
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]
    assert stored(database, "CNO-KILLED") == []

    async def restarted() -> None:
        async with rig(tmp_path, url, "home-killed") as r:
            assert r.store.unconfirmed() > 0
            await r.delivered()

    asyncio.run(restarted())
    assert sorted(r[0] for r in stored(database, "CNO-KILLED")) == list(range(RECORDS))


def test_cleared_meter_memory_still_syncs_new_records(
    services: Services, ingest_worker: Worker, database: str, tmp_path: Path
) -> None:
    url = services.add_bridge("home-cleared")
    readings = model_readings(60)

    async def scenario() -> None:
        async with rig(tmp_path, url, "home-cleared") as r:
            meter = await r.add_paired_meter(CONTOUR, "CNO-CLEARED", readings[:40])
            await r.bridge.sync_all()
            meter.memory.clear()  # counter restarts at 0: numbers 0-19 come again
            meter.load(readings[40:])
            [report] = await r.bridge.sync_all()
            assert report.complete and report.records == 20
            await r.delivered()

    asyncio.run(scenario())
    rows = stored(database, "CNO-CLEARED")
    assert len(rows) == 60
    assert sorted(r[0] for r in rows) == sorted(list(range(40)) + list(range(20)))


def test_sequence_numbers_wrap_and_sync_continues(services: Services, tmp_path: Path) -> None:
    async def scenario() -> None:
        async with rig(tmp_path, None, "home-wrap") as r:
            readings = model_readings(30)
            meter = await r.home.add_meter(CONTOUR, "CNO-WRAP", HOME, capacity=20)
            meter.memory.next_sequence = 0xFFFF - 9
            meter.load(readings[:15])  # 65526..65535, 0..4
            await r.home.pair(meter, r.store)
            await r.bridge.sync_all()
            meter.load(readings[15:])  # 5..19; the ring drops the oldest
            [report] = await r.bridge.sync_all()
            assert report.complete and report.records == 15
            assert sorted(_outbox_sequences(r.store)) == sorted(
                [*range(0xFFFF - 9, 0x10000), *range(20)]
            )

    asyncio.run(scenario())
