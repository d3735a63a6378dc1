"""Link drops, broker outages, lost batches, a killed bridge, cleared memory, the sequence
wrap: every record stored exactly once, against every simulator profile."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import subprocess
import sys
from pathlib import Path

from firmware_sim.profiles import MeterProfile
from ingest.worker import Worker
from stack.local import Services
from tests.bridge.harness import (
    HOME,
    TEST_STALL_AFTER_S,
    kept,
    model_readings,
    outbox_sequences,
    rig,
)
from tests.conftest import RunningWorker
from tests.support import wait_for

RECORDS = 200


def test_link_dropped_mid_transfer_resumes_without_loss_or_duplicate(
    services: Services, ingest_worker: Worker, database: str, tmp_path: Path, profile: MeterProfile
) -> None:
    url = services.add_bridge("home-drop")

    async def scenario() -> None:
        # No uplink first: the outbox shows exactly what the bridge took from the meter.
        async with rig(tmp_path, None, "home-drop") as r:
            meter = await r.add_paired_meter(profile, "GM-DROP", model_readings(RECORDS))
            meter.racp_server.drop_link_after = 120
            [report] = await r.bridge.sync_all()
            assert report.complete and report.attempts == 2 and report.records == RECORDS
            sequences = outbox_sequences(r.store)
            assert sorted(sequences) == list(range(RECORDS)), "each record exactly once"
        async with rig(tmp_path, url, "home-drop") as r:
            await r.delivered()

    asyncio.run(scenario())
    assert kept(database, "GM-DROP") == list(range(RECORDS))


def test_strip_insertion_drops_the_link_and_the_next_round_picks_up_the_new_result(
    services: Services, tmp_path: Path, profile: MeterProfile
) -> None:
    strip_drops_link = dataclasses.replace(profile, drops_link_on_strip=True)

    async def scenario() -> None:
        async with rig(tmp_path, None, "home-strip") as r:
            meter = await r.add_paired_meter(strip_drops_link, "ACG-STRIP", model_readings(10))
            [first] = await r.bridge.sync_all()
            assert first.records == 10
            await meter.insert_strip()
            meter.measure(mg_dl=145)
            [second] = await r.bridge.sync_all()
            assert second.complete and second.records == 1
            assert sorted(outbox_sequences(r.store)) == list(range(11))

    asyncio.run(scenario())


def test_broker_down_during_sync_outbox_delivers_when_it_returns(
    services: Services, ingest_worker: Worker, database: str, tmp_path: Path, profile: MeterProfile
) -> None:
    assert services.mosquitto is not None
    mosquitto = services.mosquitto
    url = services.add_bridge("home-outage")

    async def scenario() -> None:
        async with rig(tmp_path, url, "home-outage") as r:
            await r.add_paired_meter(profile, "CNO-OUTAGE", model_readings(RECORDS))
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
    assert kept(database, "CNO-OUTAGE") == list(range(RECORDS))


def test_a_batch_never_confirmed_is_sent_again_and_stored_once(
    services: Services, database: str, tmp_path: Path, profile: MeterProfile
) -> None:
    url = services.add_bridge("home-lost")
    workers: list[RunningWorker] = []

    async def scenario() -> None:
        async with rig(tmp_path, url, "home-lost", stall_after=TEST_STALL_AFTER_S) as r:
            await r.add_paired_meter(profile, "CNO-LOST", model_readings(RECORDS))
            # No ingest subscribed yet: the broker accepts the publish and drops it, and
            # says so (PUBACK 0x10, no matching subscribers).
            await r.bridge.sync_all()
            assert r.courier is not None
            courier = r.courier
            await asyncio.to_thread(wait_for, lambda: courier.refused > 0)
            workers.append(await asyncio.to_thread(RunningWorker.start, services, database))
            await r.delivered()
            assert r.courier.resent >= 1

    try:
        asyncio.run(scenario())
    finally:
        for running in workers:
            running.stop()
    assert kept(database, "CNO-LOST") == list(range(RECORDS))


_KILLED_BRIDGE = """
import asyncio, os, signal, sys
from pathlib import Path
from firmware_sim.profiles import PROFILES
from tests.bridge.harness import model_readings, rig

async def main():
    def die():
        os.kill(os.getpid(), signal.SIGKILL)  # between the outbox commit and any publish
    async with rig(Path(sys.argv[1]), None, "home-killed", after_commit=die) as r:
        profile = PROFILES[sys.argv[3]]
        await r.add_paired_meter(profile, "CNO-KILLED", model_readings(int(sys.argv[2])))
        await r.bridge.sync_all()

asyncio.run(main())
"""


def test_bridge_killed_after_sync_before_publishing_delivers_after_restart(
    services: Services, ingest_worker: Worker, database: str, tmp_path: Path, profile: MeterProfile
) -> None:
    url = services.add_bridge("home-killed")
    proc = subprocess.run(
        [sys.executable, "-c", _KILLED_BRIDGE, str(tmp_path), str(RECORDS), profile.key],
        cwd=Path(__file__).resolve().parents[2],
        env=dict(os.environ),
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]
    assert kept(database, "CNO-KILLED") == []

    async def restarted() -> None:
        async with rig(tmp_path, url, "home-killed") as r:
            assert r.store.unconfirmed() > 0
            await r.delivered()

    asyncio.run(restarted())
    assert kept(database, "CNO-KILLED") == list(range(RECORDS))


def test_cleared_meter_memory_still_syncs_new_records(
    services: Services, ingest_worker: Worker, database: str, tmp_path: Path, profile: MeterProfile
) -> None:
    url = services.add_bridge("home-cleared")
    readings = model_readings(60)

    async def scenario() -> None:
        async with rig(tmp_path, url, "home-cleared") as r:
            meter = await r.add_paired_meter(profile, "CNO-CLEARED", readings[:40])
            await r.bridge.sync_all()
            meter.memory.clear()  # counter restarts at 0: numbers 0-19 come again
            meter.load(readings[40:])
            [report] = await r.bridge.sync_all()
            assert report.complete and report.records == 20
            await r.delivered()

    asyncio.run(scenario())
    assert kept(database, "CNO-CLEARED") == sorted([*range(40), *range(20)])


def test_sequence_numbers_wrap_and_sync_continues(
    services: Services, tmp_path: Path, profile: MeterProfile
) -> None:
    """The 16-bit counter wraps within a sync, then between two syncs (the checkpoint at
    65530, the next records 65531..65535 and 0..9): each record arrives once, whichever of
    the optional operators (last, <=) the meter has."""

    async def scenario() -> None:
        async with rig(tmp_path, None, "home-wrap") as r:
            readings = model_readings(45)
            meter = await r.home.add_meter(profile, "CNO-WRAP", HOME, capacity=20)
            meter.memory.next_sequence = 0xFFFF - 9
            meter.load(readings[:15])  # 65526..65535, 0..4
            await r.home.pair(meter, r.store)
            await r.bridge.sync_all()
            meter.load(readings[15:30])  # 5..19; the ring drops the oldest
            [report] = await r.bridge.sync_all()
            assert report.complete and report.records == 15
            assert outbox_sequences(r.store) == sorted([*range(0xFFFF - 9, 0x10000), *range(20)])

        async with rig(tmp_path / "between", None, "home-wrap-2") as r:
            meter = await r.home.add_meter(profile, "CNO-WRAP-2", HOME, capacity=20)
            meter.memory.next_sequence = 0xFFFF - 9
            meter.load(readings[30:35])  # 65526..65530
            await r.home.pair(meter, r.store)
            await r.bridge.sync_all()
            meter.load(readings[35:45] + readings[:5])  # 65531..65535, 0..9
            [report] = await r.bridge.sync_all()
            assert report.complete and report.records == 15
            assert outbox_sequences(r.store) == sorted([*range(0xFFFF - 9, 0x10000), *range(10)])

    asyncio.run(scenario())
