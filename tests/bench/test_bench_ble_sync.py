"""Benchmark: a full meter (1,000 records) over the virtual BLE link, then to the DB.

Prints figures; asserts only that the work was done, never how fast.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from firmware_sim.profiles import CONTOUR
from ingest.worker import Worker
from stack.local import Services
from tests.bridge.harness import model_readings, rig, stored

RECORDS = 1_000


def test_bench_ble_sync_of_a_full_meter(
    services: Services, ingest_worker: Worker, database: str, tmp_path: Path
) -> None:
    url = services.add_bridge("bench-ble")
    figures: dict[str, float] = {}

    async def scenario() -> None:
        async with rig(tmp_path, url, "bench-ble") as r:
            await r.add_paired_meter(
                CONTOUR, "CNO-BENCH", model_readings(RECORDS), capacity=RECORDS
            )
            [device] = await r.bridge.scan()
            started = time.perf_counter()
            report = await r.bridge.sync_meter(device)
            figures["sync"] = time.perf_counter() - started
            assert report.complete and report.records == RECORDS
            started = time.perf_counter()
            await r.delivered()
            figures["deliver"] = time.perf_counter() - started

    asyncio.run(scenario())
    assert len(stored(database, "CNO-BENCH")) == RECORDS
    sync, deliver = figures["sync"], figures["deliver"]
    print(
        f"\nBLE sync of {RECORDS} records over the virtual link: {sync:.3f} s"
        f" ({RECORDS / sync:,.0f} records/s; connect, bond encryption, discovery, RACP)"
        f"\noutbox -> broker -> ingest -> stored and confirmed: {deliver:.3f} s"
        f" ({RECORDS / deliver:,.0f} records/s)"
    )
